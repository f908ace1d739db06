"""A training run's options, declared once: the library's `TrainOptions` and, through tyro, the
`python -m hyperthumb train` command line (flags named after the fields, help from their docstrings).

`# comments` say why a default is what it is; the field docstrings are the command line's help.
Fields marked Fixed have no flag (a command-line run keeps their defaults); Suppress marks what a run
records rather than sets.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field, fields
from typing import Annotated, Literal, Optional, Sequence, get_type_hints

import tyro
from tyro.conf import Fixed, Suppress
from tyro.constructors import PrimitiveConstructorSpec

from hyperthumb.zoo import ARCHITECTURES, PRESETS


def _folders(words: list[str]) -> list[str]:
    if not words:
        raise ValueError("give at least one folder")
    return words


# --data takes one folder or more (tyro's own list flags accept none).
_FOLDERS = PrimitiveConstructorSpec(
    nargs="*", metavar="FOLDER [FOLDER ...]", instance_from_str=_folders,
    is_instance=lambda value: isinstance(value, list),
    str_from_instance=lambda folders: [folders] if isinstance(folders, str) else list(folders))
# The command line's "no floor" is 0 dB (no thumbnail is that bad); the library's is None.
_FLOOR_DB = PrimitiveConstructorSpec(
    nargs=1, metavar="DB", instance_from_str=lambda words: float(words[0]) or None,
    is_instance=lambda value: value is None or isinstance(value, (int, float)),
    str_from_instance=lambda value: ["0" if value is None else str(value)])


def _flag(metavar: Optional[str] = None, unset: Optional[str] = None) -> object:
    """A flag's metavar, and what leaving it out means where its default, None, would not say."""
    return tyro.conf.arg(metavar=metavar, help_behavior_hint=None if unset is None else f"(default: {unset})")


@dataclass
class TrainOptions:
    """Train (or resume) a HyperThumb model."""

    encoder: Literal[ARCHITECTURES]
    """architecture (the bicubic-jpeg-sr baseline's is 'bicubic')"""
    data: Annotated[list[str], _FOLDERS]
    """folders of training photos, one per source; every source supplies the same share of patches"""
    out: Annotated[str, _flag("FOLDER")]
    """checkpoint folder; a run already there is resumed"""
    val: Annotated[Optional[str], _flag("FOLDER", "no validation")] = None
    """folder of validation photos, whose centre crops are encoded every --val-every steps"""
    preset: Annotated[Optional[Literal[PRESETS]], _flag(unset="cpu; with --init-from, the checkpoint's")] = None
    """encoder size; one other than --init-from's starts a new encoder beside its trained QPM and decoder"""
    steps: Annotated[Optional[int], _flag(unset="no limit")] = None
    """steps of this run (give --steps, --minutes or both: the first reached ends the run)"""
    minutes: Annotated[Optional[float], _flag(unset="no limit")] = None
    """minutes of this run"""
    # 192-pixel patches (48x48 thumbnails, 36 JPEG blocks for the QPM's statistics) at about the pixels
    # per step of the earlier 8 x 128 recipe.
    batch: int = 4
    """patches per step"""
    patch: int = 192
    """HR patch side"""
    lr: float = 4e-4
    """learning rate (Adam) of the decoder and QPM"""
    # The encoder learns 10x slower than the decoder and QPM: at equal rates its thumbnail changes
    # outran the decoder's use of them on the CPU budget (HR PSNR fell below the baseline).
    encoder_lr_scale: float = 0.1
    """encoder lr relative to --lr"""
    rate_lr: Fixed[float] = 5e-3
    thumbnail_weight: float = 0.6
    """weight of the thumbnail MSE against bicubic (paper: 0.6)"""
    # At 32 dB set14's textured thumbnails averaged 29.7 dB after JPEG; 33.5 dB raised every set's
    # thumbnails by 0.3-1.0 dB while HR PSNR still rose over the same run.
    thumbnail_floor_db: Annotated[Optional[float], _FLOOR_DB] = 33.5
    """penalise encoder thumbnails below this PSNR against bicubic (0: no floor)"""
    thumbnail_floor_weight: float = 70.0
    """weight of that penalty"""
    # t = -3 is about 1 bpp and t = 1 about 0.03 bpp on full-size photos: the app's whole slider.
    rate_t_min: float = -3.0
    """rate settings t are sampled from [min, max]; lower t, higher bpp"""
    rate_t_max: float = 1.0
    """upper end of the sampled rate settings"""
    lr_decay: Literal["cosine", "none"] = "cosine"
    """learning-rate schedule over this run's --steps or --minutes"""
    grad_clip: Fixed[float] = 1.0
    val_every: int = 500
    """validate every this many steps"""
    val_crop: Fixed[int] = 512
    val_rate_t: float = -1.5
    """rate setting of the validation encodes"""
    seed: Fixed[int] = 0
    device: Annotated[Optional[str], _flag("DEVICE", "cuda when present, else cpu")] = None
    """torch device"""
    bf16: bool = False
    """bf16 autocast of the encoder and decoder networks, the JPEG steps staying fp32 (for GPUs)"""
    init_from: Annotated[Optional[str], _flag("FOLDER", "a new model")] = None
    """a new run starts from this checkpoint folder"""
    # The first `hr_blocks` blocks are copied; a new `hr_features` width starts the branch anew.
    hr_blocks: Annotated[Optional[int], _flag(unset="as initialised")] = None
    """decoder HR-branch blocks of a new run"""
    hr_features: Annotated[Optional[int], _flag(unset="as initialised")] = None
    """decoder HR-branch width of a new run (the coefficient branch keeps its own)"""
    # The fast decoder reads the very same thumbnails as the checkpoint it came from.
    decoder_only: bool = False
    """train the decoder alone, encoder and QPM frozen (a fast decoder for the same thumbnails)"""
    # The sharp decoders: LPIPS on VGG16 beside L1. LPIPS on AlexNet, the product's metric, and DISTS
    # stay out of training, so that they can judge what this term does.
    perceptual_weight: float = 0.0
    """weight of LPIPS-VGG between the restored photo and the original in the loss (0: none)"""
    # A light adversarial term beside the perceptual one (ESRGAN's proportion is 5e-3 to a perceptual 1).
    adversarial_weight: float = 0.0
    """weight of a patch discriminator's non-saturating loss on the restored photo (0: none)"""
    # A fast decoder must follow its encoder: the thumbnails change when the encoder does.
    encoder_from: Annotated[Optional[str], _flag("FOLDER")] = None
    """with --decoder-only, first take this retrained checkpoint's encoder, QPM and rate model"""
    command: Suppress[str] = ""
    extra: Suppress[dict] = field(default_factory=dict)

    def command_line(self) -> str:
        """The `python -m hyperthumb train` line that makes these options (defaults left out), for a run
        started from code to record what reproduces it."""
        hints = get_type_hints(TrainOptions, include_extras=True)
        words = ["python -m hyperthumb train"]
        for item in fields(self):
            value, markers = getattr(self, item.name), getattr(hints[item.name], "__metadata__", ())
            if Suppress in markers or value == item.default:  # required fields have no default
                continue
            if Fixed in markers:
                raise ValueError(f"{item.name}={value!r} has no command-line flag")
            flag = "--" + item.name.replace("_", "-")
            if value is True:
                words.append(flag)
                continue
            spec = next((m for m in markers if isinstance(m, PrimitiveConstructorSpec)), None)
            texts = spec.str_from_instance(value) if spec else [str(value)]
            words.append(" ".join([flag, *map(shlex.quote, texts)]))
        return " ".join(words)


def parse_command_line(words: Sequence[str]) -> TrainOptions:
    """`python -m hyperthumb train`'s arguments (the words after `train`) as TrainOptions; `--help` prints
    the help and exits, and a wrong argument exits with a message, as argparse does."""
    return tyro.cli(TrainOptions, args=list(words), prog="python -m hyperthumb train",
                    config=(tyro.conf.FlagCreatePairsOff, tyro.conf.DisallowNone, tyro.conf.SuppressFixed,
                            tyro.conf.HelptextFromCommentsOff))
