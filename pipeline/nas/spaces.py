"""Search spaces: the one op vocabulary per space that the rest of the code uses.

Every op list in the project comes from here. Other codebases order ops differently
(arch2vec one-hot: input, conv1x1, conv3x3, maxpool, output); convert only at the edges
with :meth:`SearchSpace.reorder_from`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

INPUT = "input"
OUTPUT = "output"


@dataclass(frozen=True)
class SearchSpace:
    """A cell search space with ops on nodes.

    ``interior_ops`` are in the order of the official NAS-Bench-101 hash labels (label =
    index); the model one-hot order is ``ops`` = (input, *interior_ops, output).
    """

    name: str
    interior_ops: tuple[str, ...]
    max_vertices: int
    max_edges: int | None  # None: no limit

    @property
    def ops(self) -> tuple[str, ...]:
        """All op names in one-hot order: input, interior ops, output."""
        return (INPUT, *self.interior_ops, OUTPUT)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    @property
    def input_index(self) -> int:
        return 0

    @property
    def output_index(self) -> int:
        return len(self.ops) - 1

    @property
    def max_slots(self) -> int:
        """The most node slots a dense generated graph may have: its key in
        :class:`pipeline.nas.decode.CellDecoder` (an op code per slot in base K + 1, one bit per
        slot pair) must fit in a signed 64-bit integer."""
        n = self.max_vertices
        while (self.num_ops + 1) ** (n + 1) * 2 ** ((n + 1) * n // 2) <= 2**63:
            n += 1
        return n

    def op_index(self, name: str) -> int:
        """One-hot index of an op name; ValueError naming the known ops otherwise."""
        try:
            return self.ops.index(name)
        except ValueError:
            raise ValueError(
                f"unknown op {name!r} for search space {self.name}; "
                f"expected one of {list(self.ops)}"
            ) from None

    def hash_label(self, op_index: int) -> int:
        """Label used by the official NAS-Bench-101 hash: input -1, output -2, interior 0..k-1."""
        if op_index == 0:
            return -1
        if op_index == self.output_index:
            return -2
        return op_index - 1

    def reorder_from(self, other_order: tuple[str, ...] | list[str]) -> list[int]:
        """Index map: position in ``other_order`` -> index in this space's one-hot order."""
        return [self.op_index(name) for name in other_order]


NASBENCH101 = SearchSpace(
    name="nasbench101",
    interior_ops=("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"),
    max_vertices=7,
    max_edges=9,
)

# NATS-Bench topology space in node form: every non-`none`, non-skip edge op becomes a
# node (see pipeline.nas.natsbench); 4-node cells with 6 edges give at most 8 nodes.
NATSBENCH = SearchSpace(
    name="natsbench",
    interior_ops=("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
    max_vertices=8,
    max_edges=None,
)

# How a cell of one space is read as a cell of another (op renaming; the graph is kept).
# NAS-Bench-101 -> NATS: 3x3 and 1x1 convolutions map to their NATS counterparts and
# max-pooling to NATS's only pooling op (average).
OP_TRANSFER: dict[tuple[str, str], dict[str, str]] = {
    ("nasbench101", "natsbench"): {
        "conv3x3-bn-relu": "nor_conv_3x3",
        "conv1x1-bn-relu": "nor_conv_1x1",
        "maxpool3x3": "avg_pool_3x3",
    },
}

SPACES: dict[str, SearchSpace] = {s.name: s for s in (NASBENCH101, NATSBENCH)}

# The one list of benchmarks and of their data sets: every Config and command reads these.
BENCHMARKS: tuple[str, ...] = tuple(SPACES)
DATASETS: dict[str, tuple[str, ...]] = {
    "nasbench101": ("cifar10",),
    "natsbench": ("cifar10", "cifar100", "ImageNet16-120"),
}
ALL_DATASETS: tuple[str, ...] = tuple(dict.fromkeys(d for ds in DATASETS.values() for d in ds))
BenchmarkName = Literal[BENCHMARKS]  # type: ignore[valid-type]
DatasetName = Literal[ALL_DATASETS]  # type: ignore[valid-type]

# arch2vec's one-hot order for NAS-Bench-101, for conversion at the edge.
ARCH2VEC_NB101_ORDER = ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")


def get_space(name: str) -> SearchSpace:
    """Search space by name; ValueError listing the known names otherwise."""
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(
            f"unknown search space {name!r}; expected one of {sorted(SPACES)}"
        ) from None
