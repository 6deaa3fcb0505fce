"""A small model zoo of reference architectures for structural pruning.

Scaled-down versions of the families SPA (Wang et al. 2024) and Torch-Pruning prune: an MLP,
VGG-style (conv-BN-ReLU stacks, flatten into Linear), ResNet-style (basic blocks with identity
and projection shortcuts), MobileNetV2-style (inverted residuals with depthwise convolution),
DenseNet-style (dense concatenation) and a small ViT (patch embedding, class token, position
embedding, ``nn.MultiheadAttention``, LayerNorm, GELU MLP). Forward passes hard-code no channel
counts, so physically pruned copies keep working. Inputs: images ``[B, C, H, W]`` (MLP:
``[B, F]``); outputs: logits ``[B, num_classes]``. :func:`hf_zoo` builds tiny Hugging Face
models of eighteen architectures from their configs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .prune import _check_positive_int

__all__ = [
    "MLP",
    "DenseNetStyle",
    "DigitsCNN",
    "MobileNetV2Style",
    "ResNetStyle",
    "SmallViT",
    "VGGStyle",
    "hf_zoo",
    "zoo",
]


class MLP(nn.Module):
    """Linear-ReLU stack: ``[B, in_features] -> [B, num_classes]``."""

    def __init__(
        self, in_features: int = 64, hidden: tuple[int, ...] = (256, 256), num_classes: int = 10
    ):
        super().__init__()
        in_features = _check_positive_int("in_features", in_features)
        num_classes = _check_positive_int("num_classes", num_classes)
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            width_out = _check_positive_int("hidden", h)
            layers += [nn.Linear(width, width_out), nn.ReLU()]
            width = width_out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, in_features]`` -> ``[B, num_classes]``."""
        return self.head(self.body(x))


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class VGGStyle(nn.Module):
    """Conv-BN-ReLU stages with max pooling, flattened into a two-layer classifier.

    ``[B, in_channels, H, W] -> [B, num_classes]`` (H, W divisible by 2 ** len(stages)).
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (32, 64, 64),
        num_classes: int = 10,
        image_size: int = 16,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [_cbr(c, w), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** len(widths)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c * side * side, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, C, H, W]`` -> ``[B, num_classes]``."""
        return self.classifier(self.features(x))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetStyle(nn.Module):
    """ResNet-56-style CIFAR network: 3 stages of basic blocks (``blocks`` per stage).

    ``[B, in_channels, H, W] -> [B, num_classes]``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, int, int] = (16, 32, 64),
        blocks: int = 2,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        blocks = _check_positive_int("blocks", blocks)
        self.stem = _cbr(in_channels, widths[0])
        layers: list[nn.Module] = []
        c = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(_BasicBlock(c, w, 2 if (b == 0 and i > 0) else 1))
                c = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, C, H, W]`` -> ``[B, num_classes]``."""
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            _cbr(cin, hidden, 1),
            _cbr(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_res else out


class MobileNetV2Style(nn.Module):
    """MobileNetV2-style: inverted residuals (1x1 expand, 3x3 depthwise, 1x1 project).

    ``[B, in_channels, H, W] -> [B, num_classes]``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, expand: int = 4) -> None:
        super().__init__()
        expand = _check_positive_int("expand", expand)
        self.stem = _cbr(in_channels, 16, 3)
        cfg = [(16, 1), (24, 2), (24, 1), (32, 2), (32, 1)]
        blocks: list[nn.Module] = []
        c = 16
        for cout, stride in cfg:
            blocks.append(_InvertedResidual(c, cout, stride, expand))
            c = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = _cbr(c, 128, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, C, H, W]`` -> ``[B, num_classes]``."""
        x = self.pool(self.head(self.blocks(self.stem(x))))
        return self.fc(x.flatten(1))


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * growth)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, 1, 1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class DenseNetStyle(nn.Module):
    """DenseNet-style: dense blocks concatenating every layer's output, with transitions.

    ``[B, in_channels, H, W] -> [B, num_classes]``.
    """

    def __init__(
        self, in_channels: int = 3, growth: int = 12, layers: int = 3, num_classes: int = 10
    ) -> None:
        super().__init__()
        growth = _check_positive_int("growth", growth)
        layers = _check_positive_int("layers", layers)
        self.stem = nn.Conv2d(in_channels, 2 * growth, 3, 1, 1, bias=False)
        c = 2 * growth
        stages: list[nn.Module] = []
        for stage in range(2):
            for _ in range(layers):
                stages.append(_DenseLayer(c, growth))
                c += growth
            if stage == 0:
                stages += [
                    nn.BatchNorm2d(c),
                    nn.ReLU(),
                    nn.Conv2d(c, c // 2, 1, bias=False),
                    nn.AvgPool2d(2),
                ]
                c = c // 2
        self.features = nn.Sequential(*stages)
        self.norm = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, C, H, W]`` -> ``[B, num_classes]``."""
        x = self.pool(self.relu(self.norm(self.features(self.stem(x)))))
        return self.fc(torch.flatten(x, 1))


class _EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class SmallViT(nn.Module):
    """A small Vision Transformer with ``nn.MultiheadAttention``.

    ``[B, in_channels, image_size, image_size] -> [B, num_classes]``; tokens
    ``[B, 1 + (image_size / patch) ** 2, dim]``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 16,
        patch: int = 4,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size: expected a multiple of patch={patch}, got {image_size}")
        if dim % heads:
            raise ValueError(f"dim: expected a multiple of heads={heads}, got {dim}")
        n = (image_size // patch) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[_EncoderBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, C, H, W]`` -> ``[B, num_classes]``."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class DigitsCNN(nn.Module):
    """The digits CNN of the OBSPA experiment: ``[B, 1, 8, 8] -> [B, 10]``.

    Three conv-BN-ReLU layers (one max pool), global average pooling, a linear classifier.
    """

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 64), num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            _cbr(1, widths[0]),
            _cbr(widths[0], widths[1]),
            nn.MaxPool2d(2),
            _cbr(widths[1], widths[2]),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, 1, 8, 8]`` -> ``[B, num_classes]``."""
        return self.fc(self.pool(self.features(x)).flatten(1))


def zoo() -> dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]]:
    """The reference architectures: name -> (constructor, input shape without batch)."""
    return {
        "mlp": (MLP, (64,)),
        "vgg": (VGGStyle, (3, 16, 16)),
        "resnet": (ResNetStyle, (3, 16, 16)),
        "mobilenetv2": (MobileNetV2Style, (3, 16, 16)),
        "densenet": (DenseNetStyle, (3, 16, 16)),
        "vit": (SmallViT, (3, 16, 16)),
    }


def _he_init(model: nn.Module) -> nn.Module:
    """Convolutions He-normal, batch norms the identity: transformers draws both weights from
    N(0, 0.02), under which an untrained MobileViT (batch norms with their initial running
    statistics) outputs about 1e-22, too small for any check to see."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
        elif isinstance(module, nn.BatchNorm2d):
            module.reset_parameters()
    return model


def hf_zoo() -> dict[str, tuple[Callable[[], nn.Module], Callable[[], Any]]]:
    """Tiny Hugging Face models built from configs (no download; needs ``transformers``):
    name -> (constructor, example-input maker). Decoder LMs (Mistral, Qwen2, Phi, Gemma, OPT,
    GPT-NeoX, GPT-J, BLOOM, Falcon; ``input_ids: [2, 16]``), encoders (DistilBERT, RoBERTa,
    ALBERT), an encoder-decoder (T5; keyword inputs ``input_ids`` and ``decoder_input_ids``)
    and vision models (ViT, Swin, ConvNeXt, ResNet, MobileViT; ``pixel_values: [2, 3, 32,
    32]``; inputs drawn with seed 1), each two layers or stages of width 64 or less, with the
    classes' default attention.

    Raises:
        ImportError: ``transformers`` is not installed (extra ``transformers``).
    """
    import transformers

    tr: Any = transformers  # configs are built from keyword dicts
    lm: dict[str, Any] = dict(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=32,
    )

    def ids() -> torch.Tensor:
        return torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(1))

    def seq2seq() -> dict[str, torch.Tensor]:
        x = ids()
        return {"input_ids": x, "decoder_input_ids": x[:, :8]}

    def image() -> torch.Tensor:
        return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    opt: dict[str, Any] = dict(ffn_dim=128, word_embed_proj_dim=64, max_position_embeddings=32)
    small_lm: dict[str, Any] = dict(vocab_size=128, n_layer=2)
    return {
        "mistral": (
            lambda: tr.MistralForCausalLM(tr.MistralConfig(**lm, num_key_value_heads=2)),
            ids,
        ),
        "qwen2": (lambda: tr.Qwen2ForCausalLM(tr.Qwen2Config(**lm, num_key_value_heads=2)), ids),
        "phi": (lambda: tr.PhiForCausalLM(tr.PhiConfig(**lm)), ids),
        "gemma": (
            lambda: tr.GemmaForCausalLM(tr.GemmaConfig(**lm, num_key_value_heads=2, head_dim=16)),
            ids,
        ),
        "opt": (
            lambda: tr.OPTForCausalLM(
                tr.OPTConfig(
                    vocab_size=128,
                    hidden_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    **opt,
                )
            ),
            ids,
        ),
        "gpt_neox": (lambda: tr.GPTNeoXForCausalLM(tr.GPTNeoXConfig(**lm)), ids),
        "gptj": (
            lambda: tr.GPTJForCausalLM(
                tr.GPTJConfig(
                    **small_lm,
                    n_embd=64,
                    n_head=4,
                    n_positions=32,
                    rotary_dim=8,
                    bos_token_id=0,  # the default 50256 lies outside the 128-token vocabulary
                    eos_token_id=0,
                )
            ),
            ids,
        ),
        "bloom": (
            lambda: tr.BloomForCausalLM(tr.BloomConfig(**small_lm, hidden_size=64, n_head=4)),
            ids,
        ),
        "falcon": (
            lambda: tr.FalconForCausalLM(
                tr.FalconConfig(
                    vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4
                )
            ),
            ids,
        ),
        "distilbert": (
            lambda: tr.DistilBertForSequenceClassification(
                tr.DistilBertConfig(
                    vocab_size=128,
                    dim=64,
                    hidden_dim=128,
                    n_layers=2,
                    n_heads=4,
                    max_position_embeddings=32,
                )
            ),
            ids,
        ),
        "roberta": (lambda: tr.RobertaForMaskedLM(tr.RobertaConfig(**lm)), ids),
        "albert": (
            lambda: tr.AlbertForMaskedLM(tr.AlbertConfig(**lm, embedding_size=32)),
            ids,
        ),
        "t5": (
            lambda: tr.T5ForConditionalGeneration(
                tr.T5Config(
                    vocab_size=128, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4
                )
            ),
            seq2seq,
        ),
        "vit": (
            lambda: tr.ViTForImageClassification(
                tr.ViTConfig(
                    hidden_size=64,
                    intermediate_size=128,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    image_size=32,
                    patch_size=8,
                    num_labels=10,
                )
            ),
            image,
        ),
        "swin": (
            lambda: tr.SwinForImageClassification(
                tr.SwinConfig(
                    image_size=32,
                    patch_size=4,
                    embed_dim=16,
                    depths=[1, 1],
                    num_heads=[2, 4],
                    window_size=4,
                    num_labels=10,
                )
            ),
            image,
        ),
        "convnext": (
            lambda: tr.ConvNextForImageClassification(
                tr.ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], num_labels=10)
            ),
            image,
        ),
        "resnet": (
            lambda: tr.ResNetForImageClassification(
                tr.ResNetConfig(
                    embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=10
                )
            ),
            image,
        ),
        "mobilevit": (
            lambda: _he_init(
                tr.MobileViTForImageClassification(
                    tr.MobileViTConfig(
                        image_size=32,
                        hidden_sizes=[16, 24, 32],
                        neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
                        num_labels=10,
                    )
                )
            ),
            image,
        ),
    }
