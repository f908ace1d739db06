"""Transformer encoder: Swin-style local window attention at 1/8 of the HR resolution.

    HR --pixel-unshuffle(4)--> stem --stride-2 conv--> [window attention + conv FFN] x depth
       (windows shifted by half every other block) --pixel-shuffle(2)--> (+stem) --> head
       --> residual + bicubic(HR)

Attention is confined to fixed windows, so cost is linear in pixels and tiles of a 6K photo
see the same context as the whole photo away from tile borders.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hyperthumb.models.encoders.stem import UnshuffledConv
from hyperthumb.models.pixels import bicubic_downscale


@dataclass
class TransformerEncoderConfig:
    features: int = 64  # at thumbnail resolution
    embed_dim: int = 96  # token width at 1/8 HR resolution
    depth: int = 6
    heads: int = 4
    window: int = 8
    mlp_ratio: float = 2.0


def _windowed_attention(x: torch.Tensor, qkv: nn.Linear, proj: nn.Linear, heads: int, window: int,
                        shift: int) -> torch.Tensor:
    """Self-attention within window x window tiles of x (N,H,W,C); a shift offsets the grid by
    zero padding (no wrap-around across image borders)."""
    n, h, w, c = x.shape
    pad_bottom = (-(h + shift)) % window
    pad_right = (-(w + shift)) % window
    x = F.pad(x, (0, 0, shift, pad_right, shift, pad_bottom))
    hp, wp = x.shape[1:3]
    tokens = (x.view(n, hp // window, window, wp // window, window, c)
              .permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c))
    q, k, v = qkv(tokens).view(tokens.shape[0], -1, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(tokens.shape)
    out = (proj(attended).view(n, hp // window, wp // window, window, window, c)
           .permute(0, 1, 3, 2, 4, 5).reshape(n, hp, wp, c))
    return out[:, shift:shift + h, shift:shift + w]


class WindowTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float):
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.ffn_in = nn.Conv2d(dim, hidden, 1)
        self.ffn_local = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)  # position cue
        self.ffn_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N,C,H,W)."""
        tokens = x.permute(0, 2, 3, 1)
        tokens = tokens + _windowed_attention(self.norm1(tokens), self.qkv, self.proj, self.heads,
                                              self.window, self.shift)
        y = self.norm2(tokens).permute(0, 3, 1, 2)
        y = self.ffn_out(F.gelu(self.ffn_local(self.ffn_in(y))))
        return tokens.permute(0, 3, 1, 2) + y


class TransformerEncoder(nn.Module):
    def __init__(self, config: TransformerEncoderConfig, scale: int):
        super().__init__()
        self.scale = scale
        f, d = config.features, config.embed_dim
        self.stem = UnshuffledConv(scale, f)
        self.embed = nn.Conv2d(f, d, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*(
            WindowTransformerBlock(d, config.heads, config.window,
                                   0 if i % 2 == 0 else config.window // 2, config.mlp_ratio)
            for i in range(config.depth)))
        self.unembed = nn.Sequential(nn.Conv2d(d, f * 4, 3, padding=1), nn.PixelShuffle(2))
        self.refine = nn.Sequential(nn.Conv2d(f, f, 3, padding=1), nn.GELU())
        self.head = nn.Conv2d(f, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        """HR (N,3,H,W), sides multiples of 2*scale -> thumbnail (N,3,H/scale,W/scale)."""
        stem = self.stem(hr)
        x = self.unembed(self.blocks(self.embed(stem)))
        return (bicubic_downscale(hr, self.scale) + self.head(self.refine(x + stem))).clamp(0, 1)
