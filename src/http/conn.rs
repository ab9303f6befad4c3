//! The connection layer under the router. hyper answers requests it cannot parse before any
//! middleware sees them: a request line over 64 KiB gets `414`, headers larger than its read
//! buffer get `431`, both with an empty body. [`EnvelopeIo`] recognises exactly those automatic
//! answers as hyper writes them and sends the documented JSON envelope instead, so every error
//! a client can get has the same shape.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::serve::Listener;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

use crate::error::AppError;

/// A TCP listener whose connections are [`EnvelopeIo`]s.
pub struct EnvelopeListener(pub TcpListener);

impl Listener for EnvelopeListener {
    type Io = EnvelopeIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((io, addr)) => return (EnvelopeIo::new(io), addr),
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose automatic 414/431 answers are rewritten as JSON envelopes.
pub struct EnvelopeIo<T> {
    inner: T,
    /// A rewritten answer being written: its bytes, how many are out, and the length of the
    /// original buffer to report once all are.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> EnvelopeIo<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

/// The JSON answer for `buf` when it is one of hyper's automatic parse-error answers: a whole
/// short head for status 414 or 431 with `content-length: 0` and nothing after it.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() > 512 || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let err = if head.starts_with("HTTP/1.1 414 ") {
        AppError::UriTooLong("The request URL is too long".into())
    } else if head.starts_with("HTTP/1.1 431 ") {
        AppError::HeadersTooLarge("The request headers are too large".into())
    } else {
        return None;
    };
    if !head
        .to_ascii_lowercase()
        .contains("\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    let status_line = head.split("\r\n").next()?;
    let body = serde_json::to_string(&err.envelope()).ok()?;
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: AsyncWrite + Unpin> EnvelopeIo<T> {
    /// Writes the pending rewritten answer; `Ready(Ok(n))` with the original length when done.
    fn drive_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let Some((bytes, written, original)) = &mut self.pending else {
                return Poll::Ready(Ok(0));
            };
            if *written == bytes.len() {
                let n = *original;
                self.pending = None;
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                other => return other,
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EnvelopeIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EnvelopeIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match rewrite(buf) {
                Some(bytes) => self.pending = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        // hyper repeats the same buffer until it is reported written.
        self.drive_pending(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
            match (non_empty.next(), non_empty.next()) {
                (Some(only), None) if rewrite(only).is_some() => {}
                _ => return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            }
        }
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        self.poll_write(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_automatic_answers_are_rewritten() {
        let auto = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Fri, 27 Nov 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(auto).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(out.contains("content-type: application/json\r\n"));
        assert!(out.ends_with(
            r#""code":"HEADERS_TOO_LARGE","message":"The request headers are too large"}"#
        ));
        let uri = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(
            String::from_utf8(rewrite(uri).unwrap())
                .unwrap()
                .contains("URI_TOO_LONG")
        );
        // Our own answers (they carry a body or a content type) pass untouched.
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 431 X\r\ncontent-length: 12\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 414 X\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
