//! `select` / `withColumn` / `drop`, and `filter` / `where`: stateless operators over
//! expressions, evaluated a column at a time.

use deltalake::arrow::array::{ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use deltalake::arrow::compute::{cast, filter_record_batch};
use deltalake::arrow::datatypes::{DataType, SchemaRef};

use super::{BatchContext, Operator, OperatorError, RowLocal};
use crate::expr::{EvalContext, PhysicalExpr};
use crate::query::QueryError;

fn eval_error(e: crate::expr::ExprError) -> OperatorError {
    QueryError::Invalid(e.to_string()).into()
}

/// Computes the output columns from the input's.
#[derive(Debug)]
pub struct ProjectOp {
    exprs: Vec<PhysicalExpr>,
    schema: SchemaRef,
}

impl ProjectOp {
    /// One expression per field of `schema`.
    pub fn new(exprs: Vec<PhysicalExpr>, schema: SchemaRef) -> Self {
        Self { exprs, schema }
    }
}

impl Operator for ProjectOp {
    fn row_local(&self) -> Option<&dyn RowLocal> {
        Some(self)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        self.process_rows(rows, ctx.batch_timestamp_ms)
    }
}

impl RowLocal for ProjectOp {
    fn process_rows(&self, rows: RecordBatch, batch_timestamp_ms: i64) -> Result<RecordBatch, OperatorError> {
        let eval = EvalContext { batch_timestamp_ms };
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.exprs.len());
        for (e, f) in self.exprs.iter().zip(self.schema.fields()) {
            let a = e.evaluate(&rows, &eval).map_err(eval_error)?;
            cols.push(if a.data_type() == f.data_type() {
                a
            } else {
                cast(&a, f.data_type())?
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &options,
        )?)
    }
}

/// Keeps the rows for which a condition is true (null counts as false, as in SQL).
#[derive(Debug)]
pub struct FilterOp {
    condition: PhysicalExpr,
    schema: SchemaRef,
}

impl FilterOp {
    /// A filter on `condition` (a boolean expression) over rows of `schema`.
    pub fn new(condition: PhysicalExpr, schema: SchemaRef) -> Self {
        Self { condition, schema }
    }
}

impl Operator for FilterOp {
    fn row_local(&self) -> Option<&dyn RowLocal> {
        Some(self)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        self.process_rows(rows, ctx.batch_timestamp_ms)
    }
}

impl RowLocal for FilterOp {
    fn process_rows(&self, rows: RecordBatch, batch_timestamp_ms: i64) -> Result<RecordBatch, OperatorError> {
        let eval = EvalContext { batch_timestamp_ms };
        let mask = self.condition.evaluate(&rows, &eval).map_err(eval_error)?;
        if mask.data_type() != &DataType::Boolean {
            return Err(
                QueryError::Invalid(format!("a filter condition evaluated to {}", mask.data_type())).into(),
            );
        }
        Ok(filter_record_batch(&rows, mask.as_boolean())?)
    }
}
