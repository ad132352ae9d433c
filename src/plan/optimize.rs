//! The one rule of Spark's optimizer that changes what a stream does, not only how fast:
//! `PushPredicateThroughNonJoin` moves the parts of a filter that do not read the event-time
//! column below `withWatermark`, so rows they remove never reach the watermark and do not
//! advance it. (Spark 3.5, `Optimizer.scala`: a deterministic conjunct whose references do not
//! contain the watermark's event time goes below an `EventTimeWatermark`.)

use super::LogicalPlan;
use crate::expr::{BinaryOp, Expr};

/// `plan` with every filter's conjuncts that do not read its watermark's column pushed below
/// the watermark, as Spark's optimizer does.
pub fn push_filters_below_watermark(plan: LogicalPlan) -> LogicalPlan {
    match plan {
        LogicalPlan::Filter { input, condition } => {
            let input = push_filters_below_watermark(*input);
            match input {
                LogicalPlan::WithWatermark {
                    input: below,
                    column,
                    delay,
                } => {
                    let (down, up): (Vec<Expr>, Vec<Expr>) = conjuncts(condition)
                        .into_iter()
                        .partition(|c| deterministic(c) && !references(c, &column));
                    let mut below = *below;
                    if let Some(d) = and_all(down) {
                        below = push_filters_below_watermark(below.filter(d));
                    }
                    let w = below.with_watermark(&column, &delay);
                    match and_all(up) {
                        Some(u) => w.filter(u),
                        None => w,
                    }
                }
                other => other.filter(condition),
            }
        }
        other => other.map_inputs(|p, _| push_filters_below_watermark(p)),
    }
}

fn conjuncts(e: Expr) -> Vec<Expr> {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            let mut v = conjuncts(*left);
            v.extend(conjuncts(*right));
            v
        }
        other => vec![other],
    }
}

fn and_all(es: Vec<Expr>) -> Option<Expr> {
    es.into_iter().reduce(|a, b| Expr::Binary {
        op: BinaryOp::And,
        left: Box::new(a),
        right: Box::new(b),
    })
}

/// The expressions directly under `e`.
fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Column(_) | Expr::Literal(_) | Expr::Star => Vec::new(),
        Expr::Unary { expr, .. }
        | Expr::Alias { expr, .. }
        | Expr::Cast { expr, .. }
        | Expr::IsNull { expr, .. }
        | Expr::Field { expr, .. } => vec![expr],
        Expr::Binary { left, right, .. } => vec![left, right],
        Expr::Function { args, .. } => args.iter().collect(),
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            let mut v: Vec<&Expr> = operand.iter().map(|b| b.as_ref()).collect();
            for (c, r) in branches {
                v.push(c);
                v.push(r);
            }
            v.extend(otherwise.iter().map(|b| b.as_ref()));
            v
        }
        Expr::InList { expr, list, .. } => std::iter::once(expr.as_ref()).chain(list).collect(),
        Expr::Between { expr, low, high, .. } => vec![expr, low, high],
        Expr::Like { expr, pattern, .. } => vec![expr, pattern],
    }
}

/// True when `e` reads column `column` (or a field of it); `*` reads every column.
fn references(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Column(c) => c
            .split('.')
            .next()
            .is_some_and(|head| head.eq_ignore_ascii_case(column)),
        Expr::Star => true,
        other => children(other).into_iter().any(|c| references(c, column)),
    }
}

/// False for the functions whose value changes from row to row by themselves.
fn deterministic(e: &Expr) -> bool {
    match e {
        Expr::Function { name, .. } if matches!(name.as_str(), "rand" | "randn" | "uuid" | "shuffle") => {
            false
        }
        other => children(other).into_iter().all(deterministic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse_expr;

    fn plan(cond: &str) -> LogicalPlan {
        LogicalPlan::seed_events()
            .with_watermark("timestamp", "10 minutes")
            .filter(parse_expr(cond).unwrap())
    }

    #[test]
    fn conjuncts_not_reading_event_time_go_below_the_watermark() {
        let p = push_filters_below_watermark(plan("value > 1 AND timestamp > '2026-01-01' AND user_id = 3"));
        let tree = p.tree_string();
        let lines: Vec<&str> = tree.lines().collect();
        assert!(lines[0].starts_with("Filter (timestamp > "), "{tree}");
        assert!(lines[1].contains("EventTimeWatermark timestamp"), "{tree}");
        assert!(
            lines[2].contains("Filter ((value > 1) AND (user_id = 3))"),
            "{tree}"
        );
        // Wholly pushed: no filter stays above.
        let tree = push_filters_below_watermark(plan("value > 1")).tree_string();
        assert!(tree.starts_with("EventTimeWatermark"), "{tree}");
        // Reading the event time (or a random value): stays.
        let tree = push_filters_below_watermark(plan("timestamp IS NOT NULL")).tree_string();
        assert!(tree.starts_with("Filter"), "{tree}");
        let tree = push_filters_below_watermark(plan("rand() > 0.5")).tree_string();
        assert!(tree.starts_with("Filter"), "{tree}");
    }
}
