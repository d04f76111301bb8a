"""The official NAS-Bench-101 TFRecord files, read and written without TensorFlow.

Framing per record (little-endian): ``uint64 length``, ``uint32 masked crc32c(length)``,
``length`` bytes of data, ``uint32 masked crc32c(data)``. The data is UTF-8 JSON
``[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]``; ``raw_metrics`` is
base64 of a ``ModelMetrics`` protobuf message, decoded here from its message definition.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from pipeline.errors import UserError

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


class TFRecordError(UserError, ValueError):
    """A malformed TFRecord file; the message names the file and the byte offset."""


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C: rotate right by 15 bits and add a constant."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _build_model_metrics_class():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="gnn2gnn_nasbench_model_metrics.proto", package="nasbench", syntax="proto2"
    )
    fd = descriptor_pb2.FieldDescriptorProto
    eval_msg = fdp.message_type.add(name="EvaluationData")
    for number, (name, ftype) in enumerate(
        [
            ("current_epoch", fd.TYPE_DOUBLE),
            ("training_time", fd.TYPE_DOUBLE),
            ("train_accuracy", fd.TYPE_DOUBLE),
            ("validation_accuracy", fd.TYPE_DOUBLE),
            ("test_accuracy", fd.TYPE_DOUBLE),
            ("checkpoint_path", fd.TYPE_STRING),
        ],
        start=1,
    ):
        eval_msg.field.add(name=name, number=number, type=ftype, label=fd.LABEL_OPTIONAL)
    metrics = fdp.message_type.add(name="ModelMetrics")
    metrics.field.add(
        name="evaluation_data",
        number=1,
        type=fd.TYPE_MESSAGE,
        label=fd.LABEL_REPEATED,
        type_name=".nasbench.EvaluationData",
    )
    metrics.field.add(
        name="trainable_parameters", number=2, type=fd.TYPE_INT32, label=fd.LABEL_OPTIONAL
    )
    metrics.field.add(name="total_time", number=3, type=fd.TYPE_DOUBLE, label=fd.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.EvaluationData")),
    )


ModelMetrics, EvaluationData = _build_model_metrics_class()


def iter_records(path: str | Path) -> Iterator[bytes]:
    """Payloads of a TFRecord file, checking both CRCs; TFRecordError on damage."""
    path = Path(path)
    with open(path, "rb") as fh:
        offset = 0
        while True:
            header = fh.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise TFRecordError(f"{path}: truncated record header at byte {offset}")
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise TFRecordError(f"{path}: corrupted length CRC at byte {offset}")
            data = fh.read(length)
            footer = fh.read(_FOOTER.size)
            if len(data) < length or len(footer) < _FOOTER.size:
                raise TFRecordError(
                    f"{path}: truncated record at byte {offset} (expected {length} data bytes)"
                )
            if masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
                raise TFRecordError(f"{path}: corrupted data CRC in record at byte {offset}")
            offset += _HEADER.size + length + _FOOTER.size
            yield data


def write_records(path: str | Path, payloads: list[bytes]) -> None:
    """Write payloads with TFRecord framing (used by tests and tools)."""
    with open(path, "wb") as fh:
        for data in payloads:
            length = struct.pack("<Q", len(data))
            fh.write(length)
            fh.write(struct.pack("<I", masked_crc32c(length)))
            fh.write(data)
            fh.write(struct.pack("<I", masked_crc32c(data)))


@dataclass(frozen=True)
class NB101Record:
    """One (cell, epochs, repeat) record of the official file, final evaluation only."""

    module_hash: str
    epochs: int
    ops: tuple[str, ...]
    adjacency: tuple[int, ...]  # row-major V x V
    trainable_parameters: int
    training_time: float
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float


def decode_record(data: bytes, where: str = "") -> NB101Record:
    """Decode one payload: JSON list + base64 ModelMetrics protobuf."""
    try:
        module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = json.loads(data)
        metrics = ModelMetrics.FromString(base64.b64decode(raw_metrics))
        final = metrics.evaluation_data[-1]
        return NB101Record(
            module_hash=str(module_hash),
            epochs=int(epochs),
            ops=tuple(raw_operations.split(",")),
            adjacency=tuple(int(c) for c in raw_adjacency),
            trainable_parameters=int(metrics.trainable_parameters),
            training_time=float(final.training_time),
            train_accuracy=float(final.train_accuracy),
            validation_accuracy=float(final.validation_accuracy),
            test_accuracy=float(final.test_accuracy),
        )
    except Exception as exc:  # any malformed payload: one clear error
        raise TFRecordError(
            f"{where}malformed NAS-Bench-101 record: expected JSON "
            "[module_hash, epochs, raw_adjacency, raw_operations, base64 ModelMetrics] "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def encode_record(rec: NB101Record) -> bytes:
    """Inverse of :func:`decode_record` (for tests): three evaluations, the last is final."""
    metrics = ModelMetrics(trainable_parameters=rec.trainable_parameters)
    metrics.evaluation_data.add(current_epoch=0.0)
    metrics.evaluation_data.add(current_epoch=rec.epochs / 2)
    metrics.evaluation_data.add(
        current_epoch=float(rec.epochs),
        training_time=rec.training_time,
        train_accuracy=rec.train_accuracy,
        validation_accuracy=rec.validation_accuracy,
        test_accuracy=rec.test_accuracy,
    )
    metrics.total_time = rec.training_time
    payload = [
        rec.module_hash,
        rec.epochs,
        "".join(str(x) for x in rec.adjacency),
        ",".join(rec.ops),
        base64.b64encode(metrics.SerializeToString()).decode("ascii"),
    ]
    return json.dumps(payload).encode("utf-8")


def read_nasbench_tfrecord(path: str | Path, progress: bool = False) -> Iterator[NB101Record]:
    """Decoded records of ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``."""
    path = Path(path)
    records = iter_records(path)
    if progress:
        from tqdm import tqdm

        records = tqdm(records, desc=f"reading {path.name}", unit=" records", mininterval=2)
    for i, data in enumerate(records):
        yield decode_record(data, where=f"{path}: record {i}: ")
