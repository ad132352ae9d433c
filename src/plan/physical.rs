//! From the analyzer's steps to running operators: opens each stateful operator's state
//! (`state/<id>/0/`, ids in plan order, as Spark numbers them) at the batch's version.

use std::path::Path;

use deltalake::arrow::datatypes::SchemaRef;

use super::analyze::Step;
use crate::checkpoint::Durability;
use crate::operators::aggregate::AggregateOp;
use crate::operators::dedup::DedupOp;
use crate::operators::join::JoinOp;
use crate::operators::project::{FilterOp, ProjectOp};
use crate::operators::watermark::WatermarkOp;
use crate::operators::{Operator, OperatorError, Pipeline};
use crate::query::QueryError;

/// A source schema given as Spark writes one (DDL or `StructType` JSON).
pub fn parse_source_schema(text: &str) -> Result<SchemaRef, OperatorError> {
    crate::schema::parse_schema(text)
        .map_err(|e| QueryError::Invalid(format!("the source schema: {e}")).into())
}

/// The JSON decoder of a stream source: the seed's fast one for its schema without options,
/// else the general one following `schema` and Spark's reader `options`.
pub fn decoder_for(
    schema: &SchemaRef,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<crate::source::decode::Decoder, OperatorError> {
    use crate::source::decode::{Decoder, JsonOptions};
    if options.is_empty() && **schema == *crate::event::event_schema() {
        return Ok(Decoder::seed());
    }
    let opts = JsonOptions::from_spark(options)
        .map_err(|e| QueryError::Invalid(format!("the source options: {e}")))?;
    Decoder::try_new(schema.clone(), opts)
        .map_err(|e| QueryError::Invalid(format!("the source schema: {e}")).into())
}

fn stateless(step: Step) -> Result<Box<dyn Operator>, OperatorError> {
    Ok(match step {
        Step::Project { exprs, schema } => Box::new(ProjectOp::new(
            exprs.into_iter().map(|(e, _)| e).collect(),
            schema,
        )),
        Step::Filter { condition, schema } => Box::new(FilterOp::new(condition, schema)),
        Step::Watermark {
            column,
            delay_ms,
            schema,
        } => Box::new(WatermarkOp::new(schema, column, delay_ms)),
        _ => {
            return Err(QueryError::Invalid(
                "a static table's side of a join may only select and filter".into(),
            )
            .into());
        }
    })
}

/// The operators of `steps` over rows of `input`, stateful ones opened at state `version`
/// under `state_root` (`<checkpoint>/state`), their state files written with `durability`.
pub fn build_pipeline(
    input: SchemaRef,
    steps: Vec<Step>,
    state_root: &Path,
    version: u64,
    durability: Durability,
) -> Result<Pipeline, OperatorError> {
    let mut ops: Vec<Box<dyn Operator>> = Vec::new();
    let mut stateful = 0;
    let mut state_dir = || {
        let d = state_root.join(stateful.to_string()).join("0");
        stateful += 1;
        d
    };
    for step in steps {
        ops.push(match step {
            Step::Aggregate { input, spec } => {
                Box::new(AggregateOp::open(input, spec, &state_dir(), version, durability)?)
            }
            Step::Dedup { input, spec } => {
                Box::new(DedupOp::open(input, spec, &state_dir(), version, durability)?)
            }
            Step::Join {
                input,
                table,
                table_schema,
                static_steps,
                static_schema,
                spec,
            } => {
                let static_ops = static_steps
                    .into_iter()
                    .map(stateless)
                    .collect::<Result<Vec<_>, _>>()?;
                Box::new(JoinOp::new(
                    &input,
                    *table,
                    table_schema,
                    static_ops,
                    static_schema,
                    spec,
                )?)
            }
            other => stateless(other)?,
        });
    }
    Ok(Pipeline::new(input, ops))
}
