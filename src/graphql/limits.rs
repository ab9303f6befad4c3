//! Cost limits for GraphQL, checked before anything runs: root fields (aliases included) per
//! operation and mutations per request when the document is parsed, depth and complexity when
//! it is validated (async-graphql's own limits, given error codes here). A validated operation
//! then spends rate-limit units by its complexity.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use async_graphql::{
    Pos, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};

use super::GqlAuth;
use crate::{config::GraphqlLimits, service::rate_limit::RateInfo, state::AppState};

/// Marks an HTTP request whose first rate-limit unit was spent before it was parsed.
#[derive(Clone, Copy, Debug)]
pub struct EntryCharged;

/// Where the operation's rate-limit outcome is left for the HTTP layer's headers.
#[derive(Clone, Default, Debug)]
pub struct RateSlot(pub Arc<Mutex<Option<RateInfo>>>);

/// The extension factory installed on the schema.
pub struct Limits(pub GraphqlLimits);

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension(self.0.clone()))
    }
}

struct LimitsExtension(GraphqlLimits);

fn refused(code: &str, message: String, pos: Option<Pos>) -> ServerError {
    let mut e = ServerError::new(message, pos);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

/// Fields selected at the root of `set`, fragments expanded (each fragment once per path).
fn root_fields(doc: &ExecutableDocument, set: &SelectionSet, seen: &mut HashSet<String>) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(f) => root_fields(doc, &f.node.selection_set.node, seen),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.to_string();
                if !seen.insert(name.clone()) {
                    return 0;
                }
                let n = doc
                    .fragments
                    .get(spread.node.fragment_name.node.as_str())
                    .map_or(0, |f| root_fields(doc, &f.node.selection_set.node, seen));
                seen.remove(&name);
                n
            }
        })
        .sum()
}

#[async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let mut mutations = 0;
        for (_, op) in doc.operations.iter() {
            let n = root_fields(&doc, &op.node.selection_set.node, &mut HashSet::new());
            if n > self.0.max_root_fields {
                return Err(refused(
                    "TOO_MANY_ROOT_FIELDS",
                    format!(
                        "An operation may select at most {} root fields (aliases included); this one selects {n}",
                        self.0.max_root_fields
                    ),
                    Some(op.pos),
                ));
            }
            if op.node.ty == OperationType::Mutation {
                mutations += n;
            }
        }
        if mutations > self.0.max_mutations {
            return Err(refused(
                "TOO_MANY_MUTATIONS",
                format!(
                    "A request may run at most {} mutations; this one asks for {mutations}",
                    self.0.max_mutations
                ),
                None,
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| match e.message.as_str() {
                    "Query is too complex." => refused(
                        "QUERY_TOO_COMPLEX",
                        format!(
                            "The operation is too complex (at most {}; list fields count their limit times their selection)",
                            self.0.max_complexity
                        ),
                        None,
                    ),
                    "Query is nested too deep." => refused(
                        "QUERY_TOO_DEEP",
                        format!("The operation is nested deeper than {}", self.0.max_depth),
                        None,
                    ),
                    _ => e,
                })
                .collect::<Vec<_>>()
        })?;
        self.charge(ctx, result.complexity).await?;
        Ok(result)
    }
}

impl LimitsExtension {
    /// Spends the operation's rate-limit units: one per `complexity_per_unit` points, less the
    /// unit an HTTP request already spent on arrival.
    async fn charge(
        &self,
        ctx: &ExtensionContext<'_>,
        complexity: usize,
    ) -> Result<(), Vec<ServerError>> {
        let (Some(GqlAuth::Authenticated(p)), Some(state)) =
            (ctx.data_opt::<GqlAuth>(), ctx.data_opt::<AppState>())
        else {
            return Ok(());
        };
        let units = complexity
            .div_ceil(self.0.complexity_per_unit.max(1))
            .max(1);
        let already = usize::from(ctx.data_opt::<EntryCharged>().is_some());
        let cost = u32::try_from(units.saturating_sub(already)).unwrap_or(u32::MAX);
        if cost == 0 {
            return Ok(());
        }
        let slot = ctx.data_opt::<RateSlot>();
        let outcome = state.rate_limits.charge(p, cost).await;
        let (info, refusal) = match outcome {
            Ok(info) => (info, None),
            Err((e, info)) => (Some(info), Some(e)),
        };
        if let (Some(slot), Some(info)) = (slot, info) {
            *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        }
        match refusal {
            None => Ok(()),
            Some(e) => Err(vec![refused("RATE_LIMITED", e.to_string(), None)]),
        }
    }
}
