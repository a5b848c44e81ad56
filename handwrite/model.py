"""The recognition network: CNN feature extractor -> bidirectional LSTM (or GRU) -> per-frame class scores.

The CNN halves the image height in every block and halves the width in the
first ``width_pools`` blocks, so the LSTM walks width / 2**width_pools frames:
the LSTM is the slow part on a CPU, and a shorter sequence is the cheapest
speed-up. Each remaining column of CNN features (channels x reduced height)
becomes one frame for the LSTM.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


class Replace(nn.Module):
    """A plain recurrent layer's output replaces its input."""

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return out


class Residual(nn.Module):
    """A residual recurrent layer's output is added to its input, scaled per channel from zero (ReZero,
    Bachlechner et al. 2020): stacked on a trained network, the new layer first changes nothing."""

    def __init__(self, size: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return x + self.scale * out


class BiRNN(nn.Module):
    """Stacked bidirectional LSTM (or GRU) over padded batches, exact for every line's true length.

    nn.LSTM on a PackedSequence is exact too, but on CPU it leaves the fused
    kernel for a per-step path that was 2.4x slower here. Instead each direction
    is a plain unidirectional LSTM (GRU): the forward one never reads the padding
    before a line's end, and the backward one reads each line reversed within
    its own length, so its padding also comes last. The top ``residual`` layers
    add their output to their input (:class:`Residual`).
    """

    def __init__(
        self, input_size: int, hidden: int, layers: int, dropout: float, cell: str = "lstm", residual: int = 0
    ):
        super().__init__()
        sizes = [input_size] + [2 * hidden] * (layers - 1)
        rnn = getattr(nn, cell.upper())  # nn.LSTM or nn.GRU (ModelConfig checks the name)
        # The attribute names are the keys of every saved model's weights, GRU ones included.
        self.forward_lstms = nn.ModuleList(rnn(n, hidden) for n in sizes)
        self.backward_lstms = nn.ModuleList(rnn(n, hidden) for n in sizes)
        # Replace has no weights, so a network without residual layers has the keys it always had.
        self.joins = nn.ModuleList(Residual(2 * hidden) if k >= layers - residual else Replace() for k in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (T, N, F), lengths (N,) -> (T, N, 2 * hidden)."""
        t = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
        lengths = lengths.to(x.device)
        # Frame t of line n <-> frame len_n - 1 - t; padding frames stay put. Its own inverse.
        flip = torch.where(t < lengths, lengths - 1 - t, t).unsqueeze(-1)
        for k, (fwd, bwd, join) in enumerate(zip(self.forward_lstms, self.backward_lstms, self.joins)):
            # A residual layer's input is dropped out, not what it adds to: its output is x itself at first.
            inp = self.dropout(x) if k else x
            back, _ = bwd(inp.gather(0, flip.expand(-1, -1, inp.shape[2])))
            ahead, _ = fwd(inp)
            x = join(x, torch.cat([ahead, back.gather(0, flip.expand(-1, -1, back.shape[2]))], -1))
        return x


class CRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Plain ints, so that TorchScript can compile forward().
        self.width_reduction = cfg.width_reduction
        self.width_pools = cfg.width_pools
        blocks, c_in = [], 1
        for k, c_out in enumerate(cfg.channels):
            pool = (2, 2) if k < cfg.width_pools else (2, 1)
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.1, inplace=True),
                nn.MaxPool2d(pool, pool),
            ]
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        feat = c_in * (cfg.height >> len(cfg.channels))
        self.dropout = nn.Dropout(cfg.dropout)
        self.features_size = feat
        self.rnn = BiRNN(feat, cfg.lstm_hidden, cfg.lstm_layers, cfg.dropout, cfg.cell, cfg.residual_layers)
        self.head = nn.Linear(2 * cfg.lstm_hidden, cfg.num_classes)
        self._init_forget_gate()

    def _init_forget_gate(self):
        # A forget-gate bias of 1 lets gradients flow over long lines from the
        # first step (Jozefowicz et al. 2015). PyTorch splits the bias into
        # b_ih and b_hh, both laid out [input, forget, cell, output]. A GRU's are
        # [reset, update, new]: its update gate, at the same place, is the one that
        # keeps the previous state (h = (1 - z) * new + z * h), so it gets the same bias.
        h = self.cfg.lstm_hidden
        for name, p in self.rnn.named_parameters():
            if ".bias" in name:
                with torch.no_grad():
                    p.zero_()
                    p[h : 2 * h].fill_(0.5)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        return torch.div(widths, self.width_reduction, rounding_mode="floor").clamp(min=1)

    def features(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 1, H, W), right-padded with 0 -> CNN features, one frame per column
        (T, N, features_size), and frame counts (N,).

        After each block the columns past a line's own width are set to 0 again, which is what the
        next convolution's zero padding gives a line alone: a line's features do not depend on the
        lines it is batched with (otherwise its last columns would see the padding's activations)."""
        f, cols = images, widths.to(images.device)
        for i, layer in enumerate(self.cnn):
            f = layer(f)
            if i % 4 == 3:  # the end of a block: convolution, normalisation, activation, pooling
                if i // 4 < self.width_pools:
                    cols = torch.div(cols, 2, rounding_mode="floor")
                inside = torch.arange(f.shape[3], device=f.device) < cols.unsqueeze(1)
                f = f * inside[:, None, None, :].to(f.dtype)
        n, c, h, w = f.shape
        return f.permute(3, 0, 1, 2).reshape(w, n, c * h), self.output_lengths(widths).clamp(max=w)

    def classify(self, f: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """CNN features (T, N, F) -> log-probabilities (T, N, C)."""
        out = self.rnn(self.dropout(f), lengths)
        return self.head(self.dropout(out)).log_softmax(-1)

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 1, H, W) -> log-probabilities (T, N, C) and frame counts (N,)."""
        f, lengths = self.features(images, widths)
        return self.classify(f, lengths), lengths
