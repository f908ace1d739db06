"""The app's settings, read once from the environment, and the names its modules share."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hyperthumb import zoo

ROOT = Path(__file__).resolve().parent.parent
STATIC = Path(__file__).resolve().parent / "static"
EXAMPLES = sorted(str(path) for path in (ROOT / "examples").glob("*.jpg"))

ENCODERS = {zoo.METHODS[method].label: method for method in zoo.ENCODER_METHODS}  # the page's choice -> method
BOTH = "Both, side by side"
BPP_RANGE = (0.05, 0.8)  # the slider's, held again for the API, whose inputs arrive unchecked
DEFAULT_BPP = 0.3
PHOTO_FORMATS = "JPEG, PNG, WebP, TIFF or HEIC"

# The decoders a thumbnail may be restored with, as the page names them; those no model has are left out.
DECODER_CHOICES = {"Faithful": "faithful", "Fast": "fast", "Sharp": "sharp"}
DECODER_INFO = {"faithful": "the closest to the original photo",
                "fast": "about 3x quicker, a little less close",
                "sharp": "crisper detail and texture, a little less close in PSNR"}


def available_decoders() -> dict[str, str]:
    """{label: decoder kind} of the kinds some shipped model has."""
    kinds = {kind for decoders in zoo.DECODERS_OF.values() for kind in decoders} | {"faithful"}
    return {label: kind for label, kind in DECODER_CHOICES.items() if kind in kinds}


# A 6K photo is 25 MP; larger uploads would not fit a shared server's memory. HYPERTHUMB_MAX_MEGAPIXELS
# raises or lowers the limit for a server that has more or less of it.
MAX_PIXELS = int(float(os.environ.get("HYPERTHUMB_MAX_MEGAPIXELS", "50")) * 1_000_000)

LABELS_DB_ENV = "HYPERTHUMB_LABELS_DB"
ADMIN_TOKEN_ENV = "HYPERTHUMB_ADMIN_TOKEN"  # exporting raw votes; reading the aggregate is public
SHARE_ENV = "HYPERTHUMB_SHARE"
MODEL_WORK = "model"  # one queue for every event that runs a model, so the limit holds across them

OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hyperthumb-app"  # the browser sessions' files (webapp.sessions)
OUTPUT_MAX_AGE_S = 3600  # folders of sessions that never said goodbye (API clients, crashed tabs)
OUTPUT_MAX_BYTES = 2 * 2**30  # all sessions' files together; the oldest sessions go first beyond this

try:  # on a ZeroGPU Space, model work must run inside spaces.GPU
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(function):
        return function
