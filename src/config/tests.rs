//! Configuration validation tests.
use super::*;

#[test]
fn defaults_are_valid() {
    let c = Config::from_args(ConfigArgs::default()).unwrap();
    assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
    assert_eq!(c.access_token_ttl, Duration::from_secs(900));
    assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86400));
    assert!(c.database_url().starts_with("sqlite://"));
    assert_eq!(c.db_max_connections, 1);
}

#[test]
fn bad_values_name_their_key() {
    let cases: Vec<(ConfigArgs, &str)> = vec![
        (
            ConfigArgs {
                addr: Some("nope".into()),
                ..Default::default()
            },
            "WAGATE_ADDR",
        ),
        (
            ConfigArgs {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            },
            "DATABASE_URL",
        ),
        (
            ConfigArgs {
                redis_url: Some("http://x".into()),
                ..Default::default()
            },
            "REDIS_URL",
        ),
        (
            ConfigArgs {
                jwt_secret: Some("short".into()),
                ..Default::default()
            },
            "WAGATE_JWT_SECRET",
        ),
        (
            ConfigArgs {
                access_token_ttl: Some("soon".into()),
                ..Default::default()
            },
            "WAGATE_ACCESS_TOKEN_TTL",
        ),
        (
            ConfigArgs {
                refresh_token_ttl: Some("1m".into()),
                ..Default::default()
            },
            "WAGATE_REFRESH_TOKEN_TTL",
        ),
        (
            ConfigArgs {
                refresh_token_ttl: Some("400days".into()),
                ..Default::default()
            },
            "WAGATE_REFRESH_TOKEN_TTL",
        ),
        (
            ConfigArgs {
                access_token_ttl: Some("2days".into()),
                ..Default::default()
            },
            "WAGATE_ACCESS_TOKEN_TTL",
        ),
        (
            ConfigArgs {
                body_limit: Some("lots".into()),
                ..Default::default()
            },
            "WAGATE_BODY_LIMIT",
        ),
        (
            ConfigArgs {
                log_format: Some("xml".into()),
                ..Default::default()
            },
            "WAGATE_LOG_FORMAT",
        ),
    ];
    for (args, key) in cases {
        let e = Config::from_args(args).unwrap_err();
        assert_eq!(e.key, key);
        assert!(
            e.to_string()
                .starts_with(&format!("invalid configuration: {key}: "))
        );
    }
}

#[test]
fn debug_redacts_secrets() {
    let c = Config::from_args(ConfigArgs {
        database_url: Some("postgres://u:hunter2hunter2@db/x".into()),
        redis_url: Some("redis://:pw-secret@localhost".into()),
        jwt_secret: Some("s".repeat(40)),
        ..Default::default()
    })
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"));
    assert!(!dbg.contains("pw-secret"));
    assert!(!dbg.contains(&"s".repeat(40)));
    assert!(dbg.contains("[REDACTED]"));
    assert_eq!(c.db_max_connections, 10);
}

#[test]
fn webhook_settings() {
    let c = Config::from_args(ConfigArgs::default()).unwrap();
    let w = &c.webhooks;
    assert_eq!(
        w.retry_schedule
            .iter()
            .map(|d| d.as_secs())
            .collect::<Vec<_>>(),
        [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    );
    assert_eq!(w.timeout, Duration::from_secs(15));
    assert_eq!(w.disable_after, Duration::from_secs(5 * 86400));
    assert!(!w.allow_private && w.enabled);

    let custom = Config::from_args(ConfigArgs {
        webhook_retry_schedule: Some("0s, 1s ,1m".into()),
        webhook_allow_private: Some("true".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(custom.webhooks.retry_schedule.len(), 3);
    assert!(custom.webhooks.allow_private);

    for (args, key) in [
        (
            ConfigArgs {
                webhook_retry_schedule: Some("5s,1m".into()),
                ..Default::default()
            },
            "WAGATE_WEBHOOK_RETRY_SCHEDULE",
        ),
        (
            ConfigArgs {
                webhook_retry_schedule: Some("0s,soon".into()),
                ..Default::default()
            },
            "WAGATE_WEBHOOK_RETRY_SCHEDULE",
        ),
        (
            ConfigArgs {
                webhook_lease: Some("20s".into()),
                ..Default::default()
            },
            "WAGATE_WEBHOOK_LEASE",
        ),
        (
            ConfigArgs {
                webhook_endpoint_concurrency: Some("0".into()),
                ..Default::default()
            },
            "WAGATE_WEBHOOK_ENDPOINT_CONCURRENCY",
        ),
        (
            ConfigArgs {
                webhook_allow_private: Some("maybe".into()),
                ..Default::default()
            },
            "WAGATE_WEBHOOK_ALLOW_PRIVATE",
        ),
    ] {
        let e = Config::from_args(args).expect_err("invalid");
        assert_eq!(e.key, key, "{e}");
    }
}

#[test]
fn limit_and_http_keys_have_defaults_and_name_themselves_when_bad() {
    let c = Config::from_args(ConfigArgs::default()).unwrap();
    assert_eq!(c.limits.rate_per_minute, 600);
    assert_eq!(c.limits.rate_burst, 100);
    assert!(c.limits.trusted_proxies.is_empty());
    assert_eq!(c.limits.graphql.max_depth, 15);
    assert_eq!(c.limits.graphql.max_complexity, 5000);
    assert_eq!(c.limits.graphql.max_root_fields, 20);
    assert_eq!(c.limits.graphql.max_mutations, 10);
    assert_eq!(c.limits.ws_max_subscriptions, 100);
    assert_eq!(c.limits.ws_init_timeout, Duration::from_secs(10));
    assert_eq!(c.http.cors_origins, CorsOrigins::None);

    let ok = Config::from_args(ConfigArgs {
        trusted_proxies: Some("10.0.0.5, 10.1.0.0/16,::1".into()),
        cors_origins: Some("https://app.example.com,http://localhost:3000".into()),
        rate_limit_per_minute: Some("0".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ok.limits.trusted_proxies.len(), 3);
    assert!(matches!(ok.http.cors_origins, CorsOrigins::List(ref l) if l.len() == 2));
    assert_eq!(ok.limits.rate_per_minute, 0);
    let any = Config::from_args(ConfigArgs {
        cors_origins: Some("*".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(any.http.cors_origins, CorsOrigins::Any);

    for (args, key) in [
        (
            ConfigArgs {
                trusted_proxies: Some("10.0.0.0/33".into()),
                ..Default::default()
            },
            "WAGATE_TRUSTED_PROXIES",
        ),
        (
            ConfigArgs {
                cors_origins: Some("app.example.com".into()),
                ..Default::default()
            },
            "WAGATE_CORS_ORIGINS",
        ),
        (
            ConfigArgs {
                cors_origins: Some("https://app.example.com/path".into()),
                ..Default::default()
            },
            "WAGATE_CORS_ORIGINS",
        ),
        (
            ConfigArgs {
                rate_limit_burst: Some("0".into()),
                ..Default::default()
            },
            "WAGATE_RATE_LIMIT_BURST",
        ),
        (
            ConfigArgs {
                graphql_max_depth: Some("deep".into()),
                ..Default::default()
            },
            "WAGATE_GRAPHQL_MAX_DEPTH",
        ),
        (
            ConfigArgs {
                ws_init_timeout: Some("1ms".into()),
                ..Default::default()
            },
            "WAGATE_WS_INIT_TIMEOUT",
        ),
    ] {
        let e = Config::from_args(args).unwrap_err();
        assert_eq!(e.key, key, "{e}");
    }
}

#[test]
fn runtime_keys() {
    let c = Config::from_args(ConfigArgs::default()).unwrap();
    assert_eq!(c.runtime.session_lease, Duration::from_secs(6));
    assert_eq!(c.runtime.session_heartbeat, Duration::from_secs(2));
    assert_eq!(c.runtime.shutdown_grace, Duration::from_secs(20));
    // hostname-xxxxxx, different for every process start.
    let other = Config::from_args(ConfigArgs::default()).unwrap();
    assert_ne!(c.runtime.instance_id, other.runtime.instance_id);
    assert_eq!(
        c.runtime.instance_id.rsplit('-').next().map(str::len),
        Some(6)
    );
    let named = Config::from_args(ConfigArgs {
        instance_id: Some("pod-1".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(named.runtime.instance_id, "pod-1");
    for (args, key) in [
        (
            ConfigArgs {
                instance_id: Some("has space".into()),
                ..Default::default()
            },
            "WAGATE_INSTANCE_ID",
        ),
        (
            ConfigArgs {
                session_lease: Some("soon".into()),
                ..Default::default()
            },
            "WAGATE_SESSION_LEASE",
        ),
        (
            ConfigArgs {
                session_lease: Some("2s".into()),
                session_heartbeat: Some("1500ms".into()),
                ..Default::default()
            },
            "WAGATE_SESSION_HEARTBEAT",
        ),
        (
            ConfigArgs {
                shutdown_grace: Some("-1s".into()),
                ..Default::default()
            },
            "WAGATE_SHUTDOWN_GRACE",
        ),
    ] {
        let e = Config::from_args(args).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
}

#[test]
fn encryption_key_is_base64_or_hex_and_redacted() {
    let with_key = |k: &str| {
        Config::from_args(ConfigArgs {
            encryption_key: Some(k.into()),
            ..Default::default()
        })
    };
    assert!(
        Config::from_args(ConfigArgs::default())
            .unwrap()
            .encryption_key
            .is_none()
    );
    // `openssl rand -base64 32` and `openssl rand -hex 32` both work.
    let b64 = "Q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=";
    let hex = "ab".repeat(32);
    for good in [b64, hex.as_str(), &hex.to_uppercase()] {
        let c = with_key(good).unwrap();
        assert!(c.encryption_key.is_some(), "{good}");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(good), "{dbg}");
        assert!(
            dbg.contains("encryption_key: Some(\"[REDACTED]\")"),
            "{dbg}"
        );
    }
    for bad in [
        "not a key",
        "q6urq6urq6urq6urq6urq6ur",
        &"ab".repeat(31),
        &"ab".repeat(33),
        &"g".repeat(64),
    ] {
        let e = with_key(bad).unwrap_err();
        assert_eq!(e.key, "WAGATE_ENCRYPTION_KEY", "{bad}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid configuration: WAGATE_ENCRYPTION_KEY: must be 32 bytes"),
            "{msg}"
        );
        assert!(!msg.contains(bad), "the bad value is not echoed: {msg}");
    }
}

#[test]
fn providers_are_chosen_by_configuration() {
    let c = Config::from_args(ConfigArgs::default()).unwrap();
    assert_eq!(c.providers, vec![ProviderKind::Sandbox]);
    assert_eq!(c.provider, ProviderKind::Sandbox);
    let c = Config::from_args(ConfigArgs {
        providers: Some(" sandbox , sandbox ".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.providers, vec![ProviderKind::Sandbox]);
    let c = Config::from_args(ConfigArgs {
        providers: Some("sandbox,web".into()),
        provider: Some("web".into()),
        // A local server, which a test build (feature fake-whatsapp) insists on.
        web_ws_url: Some("ws://127.0.0.1:9/ws/chat".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.providers, vec![ProviderKind::Sandbox, ProviderKind::Web]);
    assert_eq!(c.provider, ProviderKind::Web);
    for (providers, provider, key, says) in [
        (
            Some("telegram"),
            None,
            "WAGATE_PROVIDERS",
            "is not sandbox, web or cloud",
        ),
        (Some(" , "), None, "WAGATE_PROVIDERS", "at least one"),
        (
            Some("sandbox,cloud"),
            None,
            "WAGATE_PROVIDERS",
            "not available in this build",
        ),
        (
            None,
            Some("cloud"),
            "WAGATE_PROVIDER",
            "not available in this build",
        ),
        (
            None,
            Some("nope"),
            "WAGATE_PROVIDER",
            "is not sandbox, web or cloud",
        ),
    ] {
        let e = Config::from_args(ConfigArgs {
            providers: providers.map(Into::into),
            provider: provider.map(Into::into),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, key, "{providers:?} {provider:?}");
        assert!(e.reason.contains(says), "{}", e.reason);
    }
}

#[test]
fn web_provider_settings() {
    let c = Config::from_args(ConfigArgs::default()).unwrap();
    assert_eq!(c.web.ws_url, "wss://web.whatsapp.com/ws/chat");
    assert_eq!(c.web.version, None);
    assert_eq!(c.web.device_name, "wagate");
    let c = Config::from_args(ConfigArgs {
        web_ws_url: Some("ws://127.0.0.1:9/ws/chat".into()),
        web_version: Some("2.3000.1023456789".into()),
        web_device_name: Some("Support desk".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.web.ws_url, "ws://127.0.0.1:9/ws/chat");
    assert_eq!(c.web.version, Some((2, 3000, 1_023_456_789)));
    assert_eq!(c.web.device_name, "Support desk");
    for (args, key, says) in [
        (
            ConfigArgs {
                web_ws_url: Some("https://web.whatsapp.com".into()),
                ..Default::default()
            },
            "WAGATE_WEB_WS_URL",
            "ws://",
        ),
        (
            ConfigArgs {
                web_ws_url: Some("not a url".into()),
                ..Default::default()
            },
            "WAGATE_WEB_WS_URL",
            "not a URL",
        ),
        (
            ConfigArgs {
                web_version: Some("2.3000".into()),
                ..Default::default()
            },
            "WAGATE_WEB_VERSION",
            "is not a version",
        ),
        (
            ConfigArgs {
                web_device_name: Some("x".repeat(51)),
                ..Default::default()
            },
            "WAGATE_WEB_DEVICE_NAME",
            "at most 50",
        ),
    ] {
        let e = Config::from_args(args).unwrap_err();
        assert_eq!(e.key, key);
        assert!(e.reason.contains(says), "{}", e.reason);
    }
}

#[cfg(feature = "fake-whatsapp")]
#[test]
fn a_test_build_talks_only_to_a_local_whatsapp() {
    let with = |url: &str| {
        Config::from_args(ConfigArgs {
            providers: Some("sandbox,web".into()),
            web_ws_url: Some(url.into()),
            ..Default::default()
        })
    };
    let e = with("wss://web.whatsapp.com/ws/chat").unwrap_err();
    assert_eq!(e.key, "WAGATE_WEB_WS_URL");
    assert!(e.reason.contains("fake-whatsapp"), "{}", e.reason);
    assert!(with("ws://127.0.0.1:9/ws/chat").is_ok());
    assert!(with("ws://localhost:9/ws/chat").is_ok());
    // Without the web provider the URL is never used.
    assert!(Config::from_args(ConfigArgs::default()).is_ok());
}
