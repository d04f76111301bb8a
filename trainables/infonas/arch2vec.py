"""arch2vec's graph VAE and the Info-NAS IO model, on dense padded cells.

arch2vec (Yan et al., 2020) as the Info-NAS paper (Table 3 of its appendix) configures it:

- encoder: ``layers`` GIN iterations (5) on the symmetrised adjacency A + A^T, each
  ``h <- BN(ReLU(MLP((1 + eps) h + (A + A^T) h)))`` with a 2-layer MLP of width ``hidden``
  (128); two dense heads give the mean and log-variance of a ``latent`` (16) vector per node;
- decoder: dropout (0.3) on Z, op logits = dense(Z) with a softmax, adjacency = sigmoid(Z Z^T);
- loss: op cross-entropy + adjacency binary cross-entropy + the KL term to N(0, I).

Deliberate choices (also in docs/guide.md):

- the op softmax is over the space's ops PLUS a padding class, so slots of cells smaller than
  N decode to "absent" rather than to a spurious op (arch2vec zero-pads its one-hot rows and,
  in its released code, uses a sigmoid although its configuration says softmax; we use the
  softmax the paper states);
- the adjacency loss covers the strictly upper triangle only: cells are DAGs in topological
  order and the inner-product decoder is symmetric, so the lower triangle carries nothing;
- the KL term is averaged over latent dimensions, node slots and cells, as arch2vec's
  (its 0.5/N x mean over cells and dimensions of the sum over nodes); summing over the 16
  dimensions instead made the posterior collapse (reconstruction stayed at chance).

The IO model adds: a dense embedding of the flattened latent matrix, an image CNN (blocks of
3x3 conv-BN-ReLU, stride 2 at the end of each block, global average pooling), and dense
layers on their concatenation predicting a network's (preprocessed) output features for an
image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import DenseGINConv


class _Flat(nn.Module):
    """Applies a module made for [B*N, F] rows (BatchNorm1d inside) to [B, N, F]."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, h: Tensor) -> Tensor:
        return self.module(h.reshape(-1, h.shape[-1])).reshape(*h.shape[:2], -1)


class GINLayer(nn.Module):
    """arch2vec's GIN layer: ``BN(ReLU(MLP((1 + eps) h + A h)))``, the aggregation and MLP
    done by PyG's ``DenseGINConv`` (learnable eps). A hand-written version was no faster:
    the VAE step at batch 32 took 8.11 ms with it and 8.32 ms with PyG's layer (median of
    5 x 300 steps, one thread; ranges 7.44-8.20 and 7.60-8.89 overlap), so PyG's is used."""

    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        mlp = nn.Sequential(
            nn.Linear(cin, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.conv = DenseGINConv(_Flat(mlp), train_eps=True)
        self.bn = nn.BatchNorm1d(hidden)

    @property
    def mlp(self) -> nn.Sequential:
        return self.conv.nn.module

    @property
    def eps(self) -> nn.Parameter:
        return self.conv.eps

    def forward(self, h: Tensor, adj: Tensor) -> Tensor:
        b, n, _ = h.shape
        out = self.conv(h, adj, add_loop=True)
        return F.relu(self.bn(out.reshape(b * n, -1))).reshape(b, n, -1)


@dataclass
class VAEOutput:
    mu: Tensor  # [B, N, L]
    logvar: Tensor  # [B, N, L]
    z: Tensor  # [B, N, L]
    op_logits: Tensor  # [B, N, K + 1]   (last class: padding)
    adj_logits: Tensor  # [B, N, N]


class Arch2Vec(nn.Module):
    def __init__(
        self,
        num_ops: int,
        num_nodes: int,
        hidden: int = 128,
        latent: int = 16,
        layers: int = 5,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.num_ops, self.num_nodes, self.latent = num_ops, num_nodes, latent
        self.gin = nn.ModuleList(
            [GINLayer(num_ops if i == 0 else hidden, hidden) for i in range(layers)]
        )
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.dropout = nn.Dropout(dropout)
        self.op_decoder = nn.Linear(latent, num_ops + 1)
        upper = torch.triu(torch.ones(num_nodes, num_nodes, dtype=torch.bool), diagonal=1)
        self.register_buffer("upper", upper, persistent=False)

    def encode(self, x: Tensor, adj: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, N, K] one-hot (zero rows = padding), adj [B, N, N] directed -> mu, logvar."""
        sym = adj + adj.transpose(1, 2)
        h = x
        for layer in self.gin:
            h = layer(h, sym)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        z = self.dropout(z)
        return self.op_decoder(z), torch.bmm(z, z.transpose(1, 2))

    def forward(self, x: Tensor, adj: Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encode(x, adj)
        if self.training:
            noise = torch.randn(mu.shape, generator=generator, device="cpu").to(mu.device)
            z = mu + noise * torch.exp(0.5 * logvar)
        else:
            z = mu
        op_logits, adj_logits = self.decode(z)
        return VAEOutput(mu, logvar, z, op_logits, adj_logits)

    @staticmethod
    def op_targets(x: Tensor) -> Tensor:
        """One-hot rows -> class indices, padding rows -> the extra class K."""
        k = x.shape[-1]
        present = x.sum(-1) > 0
        return torch.where(present, x.argmax(-1), torch.full_like(present, k, dtype=torch.long))

    def loss(self, out: VAEOutput, x: Tensor, adj: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """VAE loss (op CE + upper-triangle adjacency BCE + KL) and its parts."""
        targets = self.op_targets(x)
        ops = F.cross_entropy(out.op_logits.reshape(-1, self.num_ops + 1), targets.reshape(-1))
        up = self.upper
        adj_loss = F.binary_cross_entropy_with_logits(out.adj_logits[:, up], adj[:, up])
        kl = -0.5 * torch.mean(1 + out.logvar - out.mu.pow(2) - out.logvar.exp())
        total = ops + adj_loss + kl
        return total, {"ops_loss": ops, "adj_loss": adj_loss, "kl": kl}

    def reconstruction(self, out: VAEOutput, x: Tensor, adj: Tensor) -> dict[str, Tensor]:
        """Sums for accuracy: correct op slots, correct upper adjacency entries, exact cells."""
        targets = self.op_targets(x)
        ops_ok = out.op_logits.argmax(-1) == targets
        up = self.upper
        adj_ok = (out.adj_logits[:, up] > 0) == (adj[:, up] > 0.5)
        exact = ops_ok.all(-1) & adj_ok.all(-1)
        return {
            "ops_correct": ops_ok.sum(),
            "ops_total": torch.tensor(ops_ok.numel()),
            "adj_correct": adj_ok.sum(),
            "adj_total": torch.tensor(adj_ok.numel()),
            "exact": exact.sum(),
        }

    @torch.no_grad()
    def decode_cells(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent [B, N, L] -> (op classes [B, N] with K = absent, upper adjacency [B, N, N])."""
        op_logits = self.op_decoder(z)
        logits = torch.bmm(z, z.transpose(1, 2))
        adj = ((logits > 0) & self.upper).to(torch.uint8)
        return op_logits.argmax(-1), adj


class ImageCNN(nn.Module):
    """Blocks of 3x3 conv-BN-ReLU; the last conv of each block has stride 2; GAP at the end."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), convs_per_block: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in channels:
            for i in range(convs_per_block):
                stride = 2 if i == convs_per_block - 1 else 1
                layers += [
                    nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(),
                ]
                cin = cout
        self.body = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, images: Tensor) -> Tensor:
        return self.body(images).mean(dim=(2, 3))


class IOModel(nn.Module):
    """arch2vec VAE + image CNN + dense head predicting output features of (network, image)."""

    def __init__(
        self,
        vae: Arch2Vec,
        out_dim: int,
        net_dim: int = 128,
        head_hidden: int = 256,
        cnn_channels: tuple[int, ...] = (32, 64, 128),
    ) -> None:
        super().__init__()
        self.vae = vae
        self.net_embed = nn.Sequential(nn.Linear(vae.num_nodes * vae.latent, net_dim), nn.ReLU())
        self.cnn = ImageCNN(cnn_channels)
        self.head = nn.Sequential(
            nn.Linear(net_dim + self.cnn.out_dim, head_hidden),
            nn.ReLU(),
            nn.Linear(head_hidden, head_hidden),
            nn.ReLU(),
            nn.Linear(head_hidden, out_dim),
        )

    def predict(self, z: Tensor, images: Tensor) -> Tensor:
        net = self.net_embed(z.flatten(1))
        return self.head(torch.cat([net, self.cnn(images)], dim=1))
