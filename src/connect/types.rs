//! Spark Connect's `DataType` message ⇄ Arrow types, and the Arrow IPC bytes results travel in.

use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::ipc::reader::StreamReader;
use deltalake::arrow::ipc::writer::StreamWriter;

use super::ConnectError;
use super::proto::spark::DataType as ProtoType;
use super::proto::spark::data_type::{self as dt, Kind};

fn kind(k: Kind) -> ProtoType {
    ProtoType { kind: Some(k) }
}

/// The Spark type of an Arrow type, as the client reads a schema.
pub fn to_proto(t: &DataType) -> Result<ProtoType, ConnectError> {
    Ok(kind(match t {
        DataType::Null => Kind::Null(dt::Null::default()),
        DataType::Boolean => Kind::Boolean(dt::Boolean::default()),
        DataType::Int8 => Kind::Byte(dt::Byte::default()),
        DataType::Int16 => Kind::Short(dt::Short::default()),
        DataType::Int32 => Kind::Integer(dt::Integer::default()),
        DataType::Int64 => Kind::Long(dt::Long::default()),
        DataType::Float32 => Kind::Float(dt::Float::default()),
        DataType::Float64 => Kind::Double(dt::Double::default()),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::String(dt::String::default()),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            Kind::Binary(dt::Binary::default())
        }
        DataType::Date32 => Kind::Date(dt::Date::default()),
        DataType::Timestamp(_, Some(_)) => Kind::Timestamp(dt::Timestamp::default()),
        DataType::Timestamp(_, None) => Kind::TimestampNtz(dt::TimestampNtz::default()),
        DataType::Decimal128(p, s) => Kind::Decimal(dt::Decimal {
            precision: Some(i32::from(*p)),
            scale: Some(i32::from(*s)),
            type_variation_reference: 0,
        }),
        DataType::List(f) | DataType::LargeList(f) => Kind::Array(Box::new(dt::Array {
            element_type: Some(Box::new(to_proto(f.data_type())?)),
            contains_null: f.is_nullable(),
            type_variation_reference: 0,
        })),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(ConnectError::Internal(format!("map entries of type {t}")));
            };
            let (k, v) = match (kv.first(), kv.get(1)) {
                (Some(k), Some(v)) => (k, v),
                _ => return Err(ConnectError::Internal(format!("map entries of type {t}"))),
            };
            Kind::Map(Box::new(dt::Map {
                key_type: Some(Box::new(to_proto(k.data_type())?)),
                value_type: Some(Box::new(to_proto(v.data_type())?)),
                value_contains_null: v.is_nullable(),
                type_variation_reference: 0,
            }))
        }
        DataType::Struct(fields) => Kind::Struct(struct_of(fields.iter().map(|f| f.as_ref()))?),
        other => {
            return Err(ConnectError::Internal(format!(
                "the Arrow type {other} has no Spark type"
            )));
        }
    }))
}

fn struct_of<'a>(fields: impl Iterator<Item = &'a Field>) -> Result<dt::Struct, ConnectError> {
    Ok(dt::Struct {
        fields: fields
            .map(|f| {
                Ok(dt::StructField {
                    name: f.name().clone(),
                    data_type: Some(to_proto(f.data_type())?),
                    nullable: f.is_nullable(),
                    metadata: None,
                })
            })
            .collect::<Result<_, ConnectError>>()?,
        type_variation_reference: 0,
    })
}

/// A schema as the `struct` type the client reads.
pub fn schema_to_proto(schema: &Schema) -> Result<ProtoType, ConnectError> {
    Ok(kind(Kind::Struct(struct_of(
        schema.fields().iter().map(|f| f.as_ref()),
    )?)))
}

/// The Arrow type of a Spark type the client sent (a cast target, a literal's type).
pub fn from_proto(t: &ProtoType) -> Result<DataType, ConnectError> {
    let unserved = |what: &str| ConnectError::Unserved {
        what: format!("the type {what}"),
        hint: "use one of the types listed in the README".into(),
    };
    Ok(match &t.kind {
        None => return Err(ConnectError::InvalidRequest("a data type with no kind".into())),
        Some(k) => match k {
            Kind::Null(_) => DataType::Null,
            Kind::Boolean(_) => DataType::Boolean,
            Kind::Byte(_) => DataType::Int8,
            Kind::Short(_) => DataType::Int16,
            Kind::Integer(_) => DataType::Int32,
            Kind::Long(_) => DataType::Int64,
            Kind::Float(_) => DataType::Float32,
            Kind::Double(_) => DataType::Float64,
            Kind::String(_) | Kind::Char(_) | Kind::VarChar(_) => DataType::Utf8,
            Kind::Binary(_) => DataType::Binary,
            Kind::Date(_) => DataType::Date32,
            Kind::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::TimestampNtz(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Decimal(d) => {
                let p = d.precision.unwrap_or(10);
                let s = d.scale.unwrap_or(0);
                DataType::Decimal128(
                    u8::try_from(p).map_err(|_| unserved(&format!("decimal({p},{s})")))?,
                    i8::try_from(s).map_err(|_| unserved(&format!("decimal({p},{s})")))?,
                )
            }
            Kind::Array(a) => {
                let e = a.element_type.as_deref().ok_or_else(|| {
                    ConnectError::InvalidRequest("an array type with no element type".into())
                })?;
                crate::schema::list_type(from_proto(e)?, a.contains_null)
            }
            Kind::Map(m) => {
                let (Some(k), Some(v)) = (m.key_type.as_deref(), m.value_type.as_deref()) else {
                    return Err(ConnectError::InvalidRequest(
                        "a map type without key or value type".into(),
                    ));
                };
                crate::schema::map_type(from_proto(k)?, from_proto(v)?, m.value_contains_null)
            }
            Kind::Struct(s) => DataType::Struct(
                s.fields
                    .iter()
                    .map(|f| {
                        let t = f.data_type.as_ref().ok_or_else(|| {
                            ConnectError::InvalidRequest(format!("struct field `{}` has no type", f.name))
                        })?;
                        Ok(Arc::new(Field::new(&f.name, from_proto(t)?, f.nullable)))
                    })
                    .collect::<Result<Vec<_>, ConnectError>>()?
                    .into(),
            ),
            Kind::Unparsed(u) => crate::schema::parse_data_type(&u.data_type_string)
                .map_err(|e| ConnectError::Analysis(format!("{e}")))?,
            Kind::CalendarInterval(_) => return Err(unserved("interval")),
            Kind::YearMonthInterval(_) => return Err(unserved("interval year to month")),
            Kind::DayTimeInterval(_) => return Err(unserved("interval day to second")),
            Kind::Udt(u) => return Err(unserved(&format!("user-defined type {}", u.r#type))),
        },
    })
}

/// `rows` as one Arrow IPC stream (schema, then the batch), as an `ArrowBatch` carries it.
pub fn ipc_bytes(rows: &RecordBatch) -> Result<Vec<u8>, ConnectError> {
    let mut out = Vec::new();
    let arrow = |e: deltalake::arrow::error::ArrowError| ConnectError::Internal(format!("arrow IPC: {e}"));
    {
        let mut w = StreamWriter::try_new(&mut out, rows.schema_ref()).map_err(arrow)?;
        w.write(rows).map_err(arrow)?;
        w.finish().map_err(arrow)?;
    }
    Ok(out)
}

/// The rows of an Arrow IPC stream the client sent (`createDataFrame`'s local relation).
pub fn read_ipc(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), ConnectError> {
    let bad = |e: deltalake::arrow::error::ArrowError| {
        ConnectError::InvalidRequest(format!(
            "the local relation's data is not an Arrow IPC stream: {e}"
        ))
    };
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(bad)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(bad)?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_go_there_and_back() {
        for t in [
            DataType::Boolean,
            DataType::Int32,
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Decimal128(12, 2),
            crate::schema::list_type(DataType::Utf8, true),
            crate::schema::map_type(DataType::Utf8, DataType::Int64, true),
            DataType::Struct(vec![Field::new("a", DataType::Int32, true)].into()),
        ] {
            let back = from_proto(&to_proto(&t).unwrap()).unwrap();
            assert_eq!(back, t, "{t}");
        }
    }

    #[test]
    fn rows_go_through_ipc() {
        use deltalake::arrow::array::Int64Array;
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let (s, b) = read_ipc(&ipc_bytes(&rows).unwrap()).unwrap();
        assert_eq!(s, rows.schema());
        assert_eq!(b, vec![rows]);
        assert!(read_ipc(b"garbage").is_err());
    }
}
