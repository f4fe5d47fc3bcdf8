"""Temporal heads with one contract: (B, T, D) features → (B, T, K+1) logits, index 0 = background.

``forward_stages`` returns every stage's logits (multi-stage heads: MS-TCN, ASFormer) and the last hidden
sequence (B, T, H) that an optional displacement head reads; ``forward`` returns the last stage only.
Factories take ``(feat_dim, num_outputs, clip_len, **kwargs)`` with num_outputs = K + 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from e2espot.errors import ConfigError
from e2espot.models.registry import HEADS, register_head

MAX_RNN_HIDDEN = 768  # E2E-Spot's MAX_GRU_HIDDEN_DIM


class Head(nn.Module):
    """Base class. Subclasses set ``num_features`` (width of the hidden sequence) and ``num_stages``."""

    num_features: int
    num_stages: int = 1

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[0][-1]


class FCHead(Head):
    """Per-frame Linear(D, K+1) (E2E-Spot's ``''`` head)."""

    def __init__(self, feat_dim: int, num_outputs: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_features = feat_dim
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feat_dim, num_outputs)

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        return [self.fc(self.dropout(x))], x


class RNNHead(Head):
    """Bidirectional GRU/LSTM (hidden min(D, 768)) → Dropout(0.5) → Linear(2H, K+1)."""

    def __init__(self, feat_dim: int, num_outputs: int, *, cell: str = "gru", num_layers: int = 1,
                 hidden_dim: int | None = None, dropout: float = 0.5) -> None:
        super().__init__()
        hidden = hidden_dim or min(feat_dim, MAX_RNN_HIDDEN)
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(feat_dim, hidden, num_layers=num_layers, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * hidden, num_outputs)
        self.num_features = 2 * hidden

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        hidden, _ = self.rnn(x)  # (B, T, 2H)
        hidden = self.dropout(hidden)
        return [self.fc(hidden)], hidden


# ---- MS-TCN ----------------------------------------------------------------------------------------------


class _DilatedResidual(nn.Module):
    def __init__(self, dilation: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.conv_1x1(F.relu(self.conv_dilated(x))))


class _SingleStageTCN(nn.Module):
    def __init__(self, num_layers: int, channels: int, in_dim: int, num_outputs: int, dropout: float) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(_DilatedResidual(2 ** i, channels, dropout) for i in range(num_layers))
        self.conv_out = nn.Conv1d(channels, num_outputs, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv_in(x)
        for layer in self.layers:
            feat = layer(feat)
        return self.conv_out(feat), feat


class MSTCNHead(Head):
    """MS-TCN: stages × dilated residual layers (dilation 2^i); later stages read the previous softmax."""

    def __init__(self, feat_dim: int, num_outputs: int, *, num_stages: int = 3, num_layers: int = 5,
                 channels: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            _SingleStageTCN(num_layers, channels, feat_dim if s == 0 else num_outputs, num_outputs, dropout)
            for s in range(num_stages)
        )
        self.num_stages = num_stages
        self.num_features = channels

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        h = x.transpose(1, 2)  # (B, D, T)
        outputs = []
        for i, stage in enumerate(self.stages):
            h, feat = stage(h if i == 0 else F.softmax(h, dim=1))  # h: (B, K+1, T)
            outputs.append(h.transpose(1, 2))
        return outputs, feat.transpose(1, 2)


# ---- Transformer -----------------------------------------------------------------------------------------


class TransformerHead(Head):
    """Linear(D → d_model) + learned positional embedding + TransformerEncoder + Linear(d_model, K+1).

    The table has ``clip_len`` rows; longer clips use it linearly interpolated to T.
    """

    def __init__(self, feat_dim: int, num_outputs: int, clip_len: int, *, d_model: int = 256,
                 num_layers: int = 2, num_heads: int = 8, dim_feedforward: int = 1024,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.proj = nn.Linear(feat_dim, d_model)
        self.pos_emb = nn.Parameter(torch.randn(clip_len, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(d_model, num_outputs)
        self.num_features = d_model

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        t = x.shape[1]
        pos = self.pos_emb
        if t <= pos.shape[0]:
            pos = pos[:t]
        else:
            pos = F.interpolate(pos.T[None], size=t, mode="linear", align_corners=True)[0].T
        hidden = self.encoder(self.proj(x) + pos)  # (B, T, d_model)
        return [self.fc(self.dropout(hidden))], hidden


# ---- ASFormer (Yi et al., BMVC 2021), compact ------------------------------------------------------------


class _WindowAttention(nn.Module):
    """ASFormer's sliding-window attention: blocks of ``bl`` queries attend to ``2·bl`` keys around them."""

    def __init__(self, q_dim: int, v_dim: int, r1: int, r2: int, block: int, cross: bool) -> None:
        super().__init__()
        self.query_conv = nn.Conv1d(q_dim, q_dim // r1, 1)
        self.key_conv = nn.Conv1d(q_dim, q_dim // r1, 1)
        self.value_conv = nn.Conv1d(v_dim, v_dim // r2, 1)
        self.conv_out = nn.Conv1d(v_dim // r2, v_dim, 1)
        self.block = block
        self.cross = cross
        window = torch.zeros(block, block + 2 * (block // 2))
        for i in range(block):
            window[i, i:i + block] = 1
        self.register_buffer("window_mask", window, persistent=False)

    def forward(self, x: torch.Tensor, enc: torch.Tensor | None) -> torch.Tensor:
        q, k = self.query_conv(x), self.key_conv(x)
        v = self.value_conv(enc if self.cross and enc is not None else x)
        b, c1, length = q.shape
        bl, half = self.block, self.block // 2
        nb = math.ceil(length / bl)
        pad = nb * bl - length
        valid = x.new_ones(b, 1, length)
        q, k, v, valid = (F.pad(t, (0, pad)) for t in (q, k, v, valid))
        q = q.reshape(b, c1, nb, bl).permute(0, 2, 1, 3).reshape(b * nb, c1, bl)  # (B·nb, c1, bl)
        k, v, valid = (F.pad(t, (half, half)) for t in (k, v, valid))
        width = bl + 2 * half

        def windows(t: torch.Tensor) -> torch.Tensor:  # (B, c, L') -> (B·nb, c, width)
            return t.unfold(2, width, bl).permute(0, 2, 1, 3).reshape(b * nb, t.shape[1], width)

        k, v, valid = windows(k), windows(v), windows(valid)
        mask = self.window_mask[None] * valid  # (B·nb, bl, width)
        energy = torch.bmm(q.transpose(1, 2), k) / math.sqrt(c1)  # (B·nb, bl, width)
        attn = F.softmax(energy + torch.log(mask + 1e-6), dim=-1) * mask
        out = torch.bmm(v, attn.transpose(1, 2))  # (B·nb, c3, bl)
        out = self.conv_out(F.relu(out))
        out = out.reshape(b, nb, -1, bl).permute(0, 2, 1, 3).reshape(b, -1, nb * bl)
        return out[:, :, :length]


class _AttModule(nn.Module):
    def __init__(self, dilation: int, channels: int, r1: int, r2: int, cross: bool, alpha: float) -> None:
        super().__init__()
        self.feed_forward = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation), nn.ReLU())
        self.instance_norm = nn.InstanceNorm1d(channels, track_running_stats=False)
        self.att_layer = _WindowAttention(channels, channels, r1, r2, dilation, cross)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout()
        self.alpha = alpha

    def forward(self, x: torch.Tensor, enc: torch.Tensor | None) -> torch.Tensor:
        out = self.feed_forward(x)
        out = self.alpha * self.att_layer(self.instance_norm(out), enc) + out
        return x + self.dropout(self.conv_1x1(out))


class _ASFormerStage(nn.Module):
    def __init__(self, num_layers: int, r1: int, r2: int, channels: int, in_dim: int, num_outputs: int,
                 cross: bool, alpha: float) -> None:
        super().__init__()
        self.conv_1x1 = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList(
            _AttModule(2 ** i, channels, r1, r2, cross, alpha) for i in range(num_layers))
        self.conv_out = nn.Conv1d(channels, num_outputs, 1)

    def forward(self, x: torch.Tensor, enc: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv_1x1(x)
        for layer in self.layers:
            feat = layer(feat, enc)
        return self.conv_out(feat), feat


class ASFormerHead(Head):
    """ASFormer: an encoder (sliding-window self-attention, dilation 2^i) and decoders that read the
    previous stage's softmax with cross-attention values from the previous features; decoder s has
    weight alpha = exp(-3 s); channel masking (Dropout2d) on the encoder input. All stages are returned.
    """

    def __init__(self, feat_dim: int, num_outputs: int, *, num_decoders: int = 3, num_layers: int = 5,
                 channels: int = 64, r1: int = 2, r2: int = 2, channel_masking_rate: float = 0.3) -> None:
        super().__init__()
        self.channel_mask = nn.Dropout2d(channel_masking_rate)
        self.encoder = _ASFormerStage(num_layers, r1, r2, channels, feat_dim, num_outputs, False, 1.0)
        self.decoders = nn.ModuleList(
            _ASFormerStage(num_layers, r1, r2, channels, num_outputs, num_outputs, True, math.exp(-3 * s))
            for s in range(num_decoders)
        )
        self.num_stages = num_decoders + 1
        self.num_features = channels

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        h = self.channel_mask(x.transpose(1, 2).unsqueeze(2)).squeeze(2)  # (B, D, T)
        out, feat = self.encoder(h, None)
        outputs = [out.transpose(1, 2)]
        for decoder in self.decoders:
            out, feat = decoder(F.softmax(out, dim=1), feat)
            outputs.append(out.transpose(1, 2))
        return outputs, feat.transpose(1, 2)


# ---- T-DEED ED-SGP ---------------------------------------------------------------------------------------


class _ChannelNorm(nn.Module):
    """LayerNorm over C of a (B, C, T) tensor (TriDet's LayerNorm)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight + self.bias


def _up_size(kernel_size: int, r: float) -> int:
    size = round((kernel_size + 1) * r)
    return size + 1 if size % 2 == 0 else size


def _dw(channels: int, kernel: int) -> nn.Conv1d:
    return nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)


def _mlp(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(channels, 4 * channels, 1), nn.GELU(), nn.Conv1d(4 * channels, channels, 1))


def _init_branches(module: nn.Module, std: float) -> None:
    for m in module.children():
        if isinstance(m, nn.Conv1d) and m.groups == m.in_channels and m.in_channels > 1:
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)


class SGPBlock(nn.Module):
    """TriDet SGP block: x + (fc·φ + (w_k + w_k')·ψ + u), then x + MLP(GN16(x))."""

    def __init__(self, channels: int, kernel_size: int, r: float, init_std: float = 0.1) -> None:
        super().__init__()
        up = _up_size(kernel_size, r)
        self.ln = _ChannelNorm(channels)
        self.gn = nn.GroupNorm(16, channels)
        self.psi, self.fc = _dw(channels, kernel_size), _dw(channels, 1)
        self.convw, self.convkw = _dw(channels, kernel_size), _dw(channels, up)
        self.global_fc = _dw(channels, 1)
        self.mlp = _mlp(channels)
        _init_branches(self, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        u = self.ln(x)
        phi = F.relu(self.global_fc(u.mean(-1, keepdim=True)))
        x = x + (self.fc(u) * phi + (self.convw(u) + self.convkw(u)) * self.psi(u) + u)
        return x + self.mlp(self.gn(x))


class SGPMixer(nn.Module):
    """T-DEED SGP mixer: fuses a decoder input x (upsampled to the skip's length) with the skip z.

    As T-DEED (``model/modules.py`` ``SGPMixer`` @ ec1ad55): z = LN1(z), x = upsample(LN2(x)) (linear,
    align_corners=True, to z's length), then six branches concatenated → 1x1 conv → GELU → + MLP(GN16).
    """

    def __init__(self, channels: int, kernel_size: int, r: float, init_std: float = 0.1) -> None:
        super().__init__()
        up = _up_size(kernel_size, r)
        self.ln1, self.ln2 = _ChannelNorm(channels), _ChannelNorm(channels)
        self.gn = nn.GroupNorm(16, channels)
        self.psi1, self.psi2 = _dw(channels, kernel_size), _dw(channels, kernel_size)
        self.convw1, self.convkw1 = _dw(channels, kernel_size), _dw(channels, up)
        self.convw2, self.convkw2 = _dw(channels, kernel_size), _dw(channels, up)
        self.fc1, self.global_fc1 = _dw(channels, 1), _dw(channels, 1)
        self.fc2, self.global_fc2 = _dw(channels, 1), _dw(channels, 1)
        self.concat_fc = nn.Conv1d(6 * channels, channels, 1)
        self.mlp = _mlp(channels)
        _init_branches(self, init_std)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # x: (B, C, T/2), z: (B, C, T)
        z = self.ln1(z)
        # LayerNorm before upsampling, as T-DEED's SGPMixer.forward (model/modules.py @ ec1ad55)
        x = F.interpolate(self.ln2(x), size=z.shape[-1], mode="linear", align_corners=True)
        phi1 = F.relu(self.global_fc1(z.mean(-1, keepdim=True)))
        phi2 = F.relu(self.global_fc2(x.mean(-1, keepdim=True)))
        out = torch.cat([
            (self.convw1(z) + self.convkw1(z)) * self.psi1(z), (self.convw2(x) + self.convkw2(x)) * self.psi2(x),
            self.fc1(z) * phi1, self.fc2(x) * phi2, z, x,
        ], dim=1)  # (B, 6C, T)
        out = F.gelu(self.concat_fc(out))
        return out + self.mlp(self.gn(out))


class EDSGPHead(Head):
    """T-DEED: features + learned positional table (clip_len, D) → SGP encoder-decoder → Dropout + Linear.

    Encoder: n SGP blocks each followed by max-pooling to ceil(L / 2^(i+1)); a bottleneck SGP; decoder:
    n (SGPMixer with the skip, SGP). Clips shorter than ``clip_len`` are zero-padded to it and cropped
    back; longer clips raise ConfigError.
    """

    def __init__(self, feat_dim: int, num_outputs: int, clip_len: int, *, num_layers: int = 2,
                 kernel_size: int = 9, r: float = 4, dropout: float = 0.5) -> None:
        super().__init__()
        if feat_dim % 16:
            raise ConfigError(f"head 'edsgp' needs a feature width divisible by 16 (GroupNorm 16), got {feat_dim}")
        if kernel_size % 2 == 0:
            raise ConfigError(f"head 'edsgp': kernel_size must be odd, got {kernel_size}")
        self.clip_len = clip_len
        self.num_layers = num_layers
        self.temp_enc = nn.Parameter(torch.randn(clip_len, feat_dim) / math.sqrt(clip_len))
        self.sgp = nn.ModuleList(SGPBlock(feat_dim, kernel_size, r) for _ in range(2 * num_layers + 1))
        self.mixers = nn.ModuleList(SGPMixer(feat_dim, kernel_size, r) for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feat_dim, num_outputs)
        self.num_features = feat_dim

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        t = x.shape[1]
        if t > self.clip_len:
            raise ConfigError(
                f"head 'edsgp' was built for clips of {self.clip_len} frames and got {t}; "
                "use windows of clip_len frames"
            )
        h = x + self.temp_enc[:t]
        h = F.pad(h, (0, 0, 0, self.clip_len - t)).transpose(1, 2)  # (B, D, clip_len)
        skips = []
        for i in range(self.num_layers):
            h = self.sgp[i](h)
            skips.append(h)
            h = F.adaptive_max_pool1d(h, math.ceil(self.clip_len / 2 ** (i + 1)))
        h = self.sgp[self.num_layers](h)
        for i in range(self.num_layers):
            h = self.mixers[-(i + 1)](h, skips[-(i + 1)])
            h = self.sgp[self.num_layers + i + 1](h)
        hidden = h.transpose(1, 2)[:, :t]  # (B, T, D)
        return [self.fc(self.dropout(hidden))], hidden


# ---- registry --------------------------------------------------------------------------------------------


@register_head("fc")
def fc(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return FCHead(feat_dim, num_outputs, **kwargs)


@register_head("gru")
def gru(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return RNNHead(feat_dim, num_outputs, cell="gru", num_layers=1, **kwargs)


@register_head("deeper_gru")
def deeper_gru(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return RNNHead(feat_dim, num_outputs, cell="gru", num_layers=3, **kwargs)


@register_head("lstm")
def lstm(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return RNNHead(feat_dim, num_outputs, cell="lstm", num_layers=1, **kwargs)


@register_head("mstcn")
def mstcn(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return MSTCNHead(feat_dim, num_outputs, **kwargs)


@register_head("transformer")
def transformer(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return TransformerHead(feat_dim, num_outputs, clip_len, **kwargs)


@register_head("asformer", onnx_exporter="dynamo")  # unfold has no TorchScript ONNX symbolic
def asformer(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return ASFormerHead(feat_dim, num_outputs, **kwargs)


@register_head("edsgp", onnx_exporter="dynamo")  # adaptive_max_pool1d likewise
def edsgp(feat_dim: int, num_outputs: int, clip_len: int, **kwargs) -> Head:
    return EDSGPHead(feat_dim, num_outputs, clip_len, **kwargs)


def create_head(name: str, feat_dim: int, num_outputs: int, clip_len: int = 100, **kwargs) -> Head:
    """Build a registered head; bad keyword options raise ConfigError."""
    entry = HEADS.get(name)
    try:
        return entry.factory(feat_dim, num_outputs, clip_len, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"head '{name}': bad head_kwargs {sorted(kwargs)} ({exc})") from None
