//! Stream–static join with a Delta table (seed Example 4). Filled in with the join query.

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;

use super::OperatorError;
use crate::query::{JoinSpec, Query, QueryError};

/// The join operator.
#[derive(Debug)]
pub struct JoinOp {
    schema: SchemaRef,
}

impl JoinOp {
    /// Opens the static side.
    pub async fn open(_query: &Query, spec: &JoinSpec) -> Result<Self, OperatorError> {
        Err(QueryError::Invalid(format!("joins are not supported yet ({})", spec.table.display())).into())
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Joins one batch.
    pub fn process(&mut self, _rows: &RecordBatch) -> Result<RecordBatch, OperatorError> {
        Ok(RecordBatch::new_empty(self.schema.clone()))
    }
}
