"""The network of a NAS-Bench-101 cell, in PyTorch.

Written here rather than taken from ``nasbench-pytorch`` (1.3.1): we need our own
:class:`~pipeline.nas.cells.Cell` as input, the pooled features before the classifier as a
second output, reduced stem widths for the ``cpu`` profile, and the package's ``ModelSpec``
crashes on torch tensors. The rules are those of the NAS-Bench-101 TensorFlow code, and the
parameter count equals the benchmark's ``params`` column at the default stem of 128 channels
(tested on sampled cells):

- stem: 3x3 conv-BN-ReLU to ``stem_channels``; then ``num_stacks`` stacks of
  ``cells_per_stack`` cells, a 2x2/2 max-pool and channel doubling before every stack but
  the first; global average pooling; a dense classifier.
- in a cell, the output vertex's channels are split evenly over the interior vertices that
  feed it (the first ``C mod k`` get one more); other interior vertices take the largest
  channel count of their successors. A vertex sums its inputs: interior predecessors
  truncated to its channel count, the cell input through a 1x1 conv-BN-ReLU projection.
  The output vertex concatenates the interior vertices that feed it, plus a projection of
  the cell input when the input feeds the output directly (or the projection alone when no
  interior vertex does).
- convolutions have no bias; batch norm has a scale and a shift (2 parameters a channel).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.nas.cells import Cell, CellError
from pipeline.nas.spaces import NASBENCH101, SearchSpace

# PyTorch's batch-norm defaults, as Info-NAS ("batch normalization ... set to default
# values"). NAS-Bench-101's decay 0.997 (momentum 0.003) leaves the running statistics near
# their initial values after a short training: a 2-epoch network then scored 9% at eval.
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


def vertex_channels(in_channels: int, out_channels: int, adjacency) -> list[int]:
    """Channels of every vertex of a (pruned) cell, as NAS-Bench-101 computes them."""
    a = [[int(v) for v in row] for row in adjacency]
    n = len(a)
    ch = [0] * n
    ch[0], ch[n - 1] = in_channels, out_channels
    if n == 2:
        return ch
    feeds_out = [v for v in range(1, n - 1) if a[v][n - 1]]
    k = len(feeds_out)
    interior, correction = out_channels // k, out_channels % k
    for v in feeds_out:
        ch[v] = interior + (1 if correction > 0 else 0)
        correction -= 1 if correction > 0 else 0
    for v in range(n - 3, 0, -1):
        if not a[v][n - 1]:
            for dst in range(v + 1, n - 1):
                if a[v][dst]:
                    ch[v] = max(ch[v], ch[dst])
        if ch[v] <= 0:
            raise CellError(f"vertex {v} gets no channels; is the cell pruned?")
    return ch


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=False),
        )


def _op(name: str, channels: int) -> nn.Module:
    if name == "conv3x3-bn-relu":
        return ConvBnRelu(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBnRelu(channels, channels, 1)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise CellError(f"unknown NAS-Bench-101 op {name!r}")


class CellModule(nn.Module):
    def __init__(self, cell: Cell, in_channels: int, out_channels: int) -> None:
        super().__init__()
        a = [[int(v) for v in row] for row in cell.adjacency]
        self.n = n = len(a)
        self.adj = a
        self.ch = vertex_channels(in_channels, out_channels, a)
        self.ops = nn.ModuleList([nn.Identity()])
        self.proj = nn.ModuleDict()
        for v in range(1, n - 1):
            self.ops.append(_op(cell.ops[v], self.ch[v]))
            if a[0][v]:
                self.proj[str(v)] = ConvBnRelu(in_channels, self.ch[v], 1)
        if a[0][n - 1]:
            self.proj[str(n - 1)] = ConvBnRelu(in_channels, out_channels, 1)
        self.out_from = [v for v in range(1, n - 1) if a[v][n - 1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, a, ch = self.n, self.adj, self.ch
        tensors = [x]
        for v in range(1, n - 1):
            ins = [tensors[s][:, : ch[v]] for s in range(1, v) if a[s][v]]
            if a[0][v]:
                ins.append(self.proj[str(v)](x))
            h = ins[0]
            for extra in ins[1:]:
                h = h + extra
            tensors.append(self.ops[v](h))
        if not self.out_from:
            return self.proj[str(n - 1)](x)
        out = (
            tensors[self.out_from[0]]
            if len(self.out_from) == 1
            else torch.cat([tensors[v] for v in self.out_from], 1)
        )
        if a[0][n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """``forward(x)`` -> logits; ``features(x)`` -> the pooled features before the classifier."""

    def __init__(
        self,
        cell: Cell,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        num_classes: int = 10,
        space: SearchSpace = NASBENCH101,
    ) -> None:
        super().__init__()
        pruned = cell.prune()
        if pruned is None:
            raise CellError("the cell has no input-to-output path")
        err = pruned.validity_error(space)
        if err:
            raise CellError(err)
        self.cell = pruned
        layers: list[nn.Module] = [ConvBnRelu(3, stem_channels, 3)]
        channels = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                out = channels * 2
            else:
                out = channels
            for _ in range(cells_per_stack):
                layers.append(CellModule(pruned, channels, out))
                channels = out
        self.body = nn.Sequential(*layers)
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
