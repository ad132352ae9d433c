//! Spark Connect messages as the PySpark client builds them, for Rust clients of the server:
//! its tests and benches drive it with these.

use super::proto::spark as pb;

/// A relation of type `t`.
pub fn rel(t: pb::relation::RelType) -> pb::Relation {
    pb::Relation {
        common: None,
        rel_type: Some(t),
    }
}

/// `col(name)`.
pub fn col(name: &str) -> pb::Expression {
    pb::Expression {
        expr_type: Some(pb::expression::ExprType::UnresolvedAttribute(
            pb::expression::UnresolvedAttribute {
                unparsed_identifier: name.into(),
                plan_id: None,
            },
        )),
    }
}

/// A string literal.
pub fn string_lit(s: &str) -> pb::Expression {
    pb::Expression {
        expr_type: Some(pb::expression::ExprType::Literal(pb::expression::Literal {
            literal_type: Some(pb::expression::literal::LiteralType::String(s.into())),
        })),
    }
}

/// A function call (operators too: `==`, `and`).
pub fn call(name: &str, args: Vec<pb::Expression>) -> pb::Expression {
    pb::Expression {
        expr_type: Some(pb::expression::ExprType::UnresolvedFunction(
            pb::expression::UnresolvedFunction {
                function_name: name.into(),
                arguments: args,
                is_distinct: false,
                is_user_defined_function: false,
            },
        )),
    }
}

/// `e.alias(name)`.
pub fn alias(e: pb::Expression, name: &str) -> pb::Expression {
    pb::Expression {
        expr_type: Some(pb::expression::ExprType::Alias(Box::new(pb::expression::Alias {
            expr: Some(Box::new(e)),
            name: vec![name.into()],
            metadata: None,
        }))),
    }
}

/// `spark.readStream.format("json").schema(schema).option("maxFilesPerTrigger", n).load(path)`.
pub fn read_stream(path: &str, schema: &str, max_files: u32) -> pb::Relation {
    rel(pb::relation::RelType::Read(pb::Read {
        read_type: Some(pb::read::ReadType::DataSource(pb::read::DataSource {
            format: Some("json".into()),
            schema: Some(schema.into()),
            options: [("maxFilesPerTrigger".to_string(), max_files.to_string())].into(),
            paths: vec![path.into()],
            predicates: vec![],
        })),
        is_streaming: true,
    }))
}

/// `spark.read.format("delta").load(path)`.
pub fn read_delta(path: &str) -> pb::Relation {
    rel(pb::relation::RelType::Read(pb::Read {
        read_type: Some(pb::read::ReadType::DataSource(pb::read::DataSource {
            format: Some("delta".into()),
            schema: None,
            options: Default::default(),
            paths: vec![path.into()],
            predicates: vec![],
        })),
        is_streaming: false,
    }))
}

/// The seed's Example 2 over `input`.
pub fn windowed(input: pb::Relation) -> pb::Relation {
    let wm = rel(pb::relation::RelType::WithWatermark(Box::new(
        pb::WithWatermark {
            input: Some(Box::new(input)),
            event_time: "timestamp".into(),
            delay_threshold: "10 minutes".into(),
        },
    )));
    rel(pb::relation::RelType::Aggregate(Box::new(pb::Aggregate {
        input: Some(Box::new(wm)),
        group_type: pb::aggregate::GroupType::Groupby as i32,
        grouping_expressions: vec![
            call("window", vec![col("timestamp"), string_lit("5 minutes")]),
            col("event_type"),
        ],
        aggregate_expressions: vec![
            alias(
                call(
                    "count",
                    vec![pb::Expression {
                        expr_type: Some(pb::expression::ExprType::UnresolvedStar(
                            pb::expression::UnresolvedStar {
                                unparsed_target: None,
                            },
                        )),
                    }],
                ),
                "event_count",
            ),
            alias(call("avg", vec![col("value")]), "avg_value"),
        ],
        pivot: None,
    })))
}

/// `writeStream.format("delta").outputMode(mode).option("checkpointLocation", …).trigger(…).start(path)`.
pub fn start_command(
    input: pb::Relation,
    mode: &str,
    checkpoint: &str,
    path: &str,
    trigger: pb::write_stream_operation_start::Trigger,
) -> pb::Command {
    pb::Command {
        command_type: Some(pb::command::CommandType::WriteStreamOperationStart(
            pb::WriteStreamOperationStart {
                input: Some(input),
                format: "delta".into(),
                options: [("checkpointLocation".to_string(), checkpoint.to_string())].into(),
                partitioning_column_names: vec![],
                trigger: Some(trigger),
                output_mode: mode.into(),
                query_name: String::new(),
                sink_destination: Some(pb::write_stream_operation_start::SinkDestination::Path(
                    path.into(),
                )),
                foreach_writer: None,
                foreach_batch: None,
            },
        )),
    }
}

/// An `ExecutePlan` request of `session` for `op`.
pub fn request(session: &str, op: pb::plan::OpType) -> pb::ExecutePlanRequest {
    pb::ExecutePlanRequest {
        session_id: session.into(),
        user_context: None,
        operation_id: Some(uuid::Uuid::new_v4().to_string()),
        plan: Some(pb::Plan { op_type: Some(op) }),
        client_type: Some("microbatch-test".into()),
        request_options: vec![],
        tags: vec![],
    }
}
