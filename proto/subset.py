"""Writes proto/spark_connect.proto: the part of Spark Connect 3.5 that `microbatch serve` reads
and answers, with field numbers and names taken from the installed PySpark client (the source of
truth for what the client sends).

    python -m venv .venv && .venv/bin/pip install "pyspark[connect]==3.5.9"
    .venv/bin/python proto/subset.py > proto/spark_connect.proto

Every message reachable from the service's requests and answers is written, except the payloads
of relations, expressions and commands this server does not serve: those fields keep their number
and name but take the empty message `Unserved`, so such a request still decodes, and the server can
name what it was sent ("relation 'sample' is not served") instead of seeing nothing.
"""
import sys

from google.protobuf import descriptor as d
from pyspark.sql.connect.proto import base_pb2

SERVED = {
    "spark.connect.Relation": {
        "common", "read", "project", "filter", "join", "aggregate", "local_relation", "deduplicate",
        "with_columns_renamed", "show_string", "drop", "with_columns", "with_watermark", "limit",
        "sort", "to_df", "subquery_alias", "offset", "tail", "unknown",
    },
    "spark.connect.Expression": {
        "literal", "unresolved_attribute", "unresolved_function", "expression_string",
        "unresolved_star", "alias", "cast", "sort_order", "unresolved_extract_value",
    },
    "spark.connect.Command": {
        "write_operation", "write_stream_operation_start", "streaming_query_command",
        "streaming_query_manager_command",
    },
    "spark.connect.Read": {"data_source", "named_table", "is_streaming"},
    # Artifacts (Python UDFs, jars) are refused as a whole; their bodies need not decode.
    "spark.connect.AddArtifactsRequest": {"session_id", "user_context", "client_type"},
    "spark.connect.ExecutePlanResponse": {
        "session_id", "operation_id", "response_id", "arrow_batch", "write_stream_operation_start_result",
        "streaming_query_command_result", "streaming_query_manager_command_result", "result_complete",
        "schema", "metrics",
    },
}
NEVER = {"google.protobuf.Any"}

SCALAR = {
    d.FieldDescriptor.TYPE_DOUBLE: "double", d.FieldDescriptor.TYPE_FLOAT: "float",
    d.FieldDescriptor.TYPE_INT64: "int64", d.FieldDescriptor.TYPE_UINT64: "uint64",
    d.FieldDescriptor.TYPE_INT32: "int32", d.FieldDescriptor.TYPE_FIXED64: "fixed64",
    d.FieldDescriptor.TYPE_FIXED32: "fixed32", d.FieldDescriptor.TYPE_BOOL: "bool",
    d.FieldDescriptor.TYPE_STRING: "string", d.FieldDescriptor.TYPE_BYTES: "bytes",
    d.FieldDescriptor.TYPE_UINT32: "uint32", d.FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    d.FieldDescriptor.TYPE_SFIXED64: "sfixed64", d.FieldDescriptor.TYPE_SINT32: "sint32",
    d.FieldDescriptor.TYPE_SINT64: "sint64",
}


def kept(msg, field):
    served = SERVED.get(msg.full_name)
    if served is not None and field.name not in served:
        return False
    return field.message_type is None or field.message_type.full_name not in NEVER


def is_map(field):
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def synthetic(field):
    o = field.containing_oneof
    return o is not None and len(o.fields) == 1 and o.name == "_" + field.name


# the closure of messages and enums the service reaches
messages, enums, todo = set(), set(), []
service = base_pb2.DESCRIPTOR.services_by_name["SparkConnectService"]
for m in service.methods:
    todo += [m.input_type, m.output_type]
while todo:
    msg = todo.pop()
    if msg.full_name in messages:
        continue
    messages.add(msg.full_name)
    parent = msg.containing_type
    while parent is not None:  # a nested message is written inside its parents
        todo.append(parent)
        parent = parent.containing_type
    for f in msg.fields:
        if not kept(msg, f):
            continue
        if f.message_type is not None:
            if is_map(f):
                for sub in f.message_type.fields:
                    if sub.message_type is not None:
                        todo.append(sub.message_type)
                    if sub.enum_type is not None:
                        enums.add(sub.enum_type)
            else:
                todo.append(f.message_type)
        if f.enum_type is not None:
            enums.add(f.enum_type)
            if f.enum_type.containing_type is not None:
                todo.append(f.enum_type.containing_type)


def type_name(f):
    if f.message_type is not None:
        return "." + f.message_type.full_name
    if f.enum_type is not None:
        return "." + f.enum_type.full_name
    return SCALAR[f.type]


def field_line(msg, f):
    if not kept(msg, f):
        return f"Unserved {f.name} = {f.number};"
    if is_map(f):
        k, v = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        return f"map<{type_name(k)}, {type_name(v)}> {f.name} = {f.number};"
    label = ""
    if f.is_repeated if hasattr(f, "is_repeated") else f.label == d.FieldDescriptor.LABEL_REPEATED:
        label = "repeated "
    elif synthetic(f):
        label = "optional "
    return f"{label}{type_name(f)} {f.name} = {f.number};"


def write_enum(e, ind, out):
    out.append(f"{ind}enum {e.name} {{")
    for v in e.values:
        out.append(f"{ind}  {v.name} = {v.number};")
    out.append(f"{ind}}}")


def write_message(msg, ind, out):
    out.append(f"{ind}message {msg.name} {{")
    for e in msg.enum_types:
        if e in enums:
            write_enum(e, ind + "  ", out)
    for n in msg.nested_types:
        if n.full_name in messages and not n.GetOptions().map_entry:
            write_message(n, ind + "  ", out)
    oneofs = {}
    for f in msg.fields:
        o = f.containing_oneof
        if o is not None and not synthetic(f):
            oneofs.setdefault(o.name, []).append(f)
    done = set()
    for f in msg.fields:
        o = f.containing_oneof
        if o is not None and not synthetic(f):
            if o.name in done:
                continue
            done.add(o.name)
            out.append(f"{ind}  oneof {o.name} {{")
            for g in oneofs[o.name]:
                out.append(f"{ind}    {field_line(msg, g)}")
            out.append(f"{ind}  }}")
        else:
            out.append(f"{ind}  {field_line(msg, f)}")
    out.append(f"{ind}}}")


out = [
    "// Generated by proto/subset.py from the PySpark 3.5.9 client's descriptors; do not edit.",
    "// The part of Spark Connect that `microbatch serve` reads and answers.",
    'syntax = "proto3";',
    "package spark.connect;",
    "",
    "// A relation, expression or command this server does not serve: its field is kept so the",
    "// server can name it in the error, its body is skipped.",
    "message Unserved {}",
    "",
]
files = sorted({base_pb2.DESCRIPTOR.pool.FindMessageTypeByName(n).file.name for n in messages})
for fname in files:
    fd = base_pb2.DESCRIPTOR.pool.FindFileByName(fname)
    out.append(f"// from {fname}")
    for e in fd.enum_types_by_name.values():
        if e in enums:
            write_enum(e, "", out)
    for m in fd.message_types_by_name.values():
        if m.full_name in messages:
            write_message(m, "", out)
    out.append("")
out.append("service SparkConnectService {")
for m in service.methods:
    req = ("stream " if m.client_streaming else "") + "." + m.input_type.full_name
    resp = ("stream " if m.server_streaming else "") + "." + m.output_type.full_name
    out.append(f"  rpc {m.name}({req}) returns ({resp});")
out.append("}")
print("\n".join(out))
