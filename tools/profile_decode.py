"""Throwaway: where a 6K CUDA decode spends its time (stages and profiler top ops)."""
import time

import torch

from hyperthumb.codec.runtime import Runtime
from hyperthumb.codec.thumbnail_codec import HyperThumbCodec, read_thumbnail_bytes
from hyperthumb.evaluation.bench import synthetic_photo
from hyperthumb.jpeg.file import read_thumbnail
from hyperthumb.zoo import load_model

dev = torch.device("cuda")
photo = synthetic_photo(6144, 4096)
model = load_model("rdbunet", source="weights/rdbunet", device="cuda").model
codec = HyperThumbCodec(model, "rdbunet", dev, runtime=Runtime(torch.bfloat16))
t = time.perf_counter(); thumb = codec.encode(photo, target_bpp=0.3); torch.cuda.synchronize(); print("encode s", time.perf_counter() - t)
t = time.perf_counter(); thumb = codec.encode(photo, target_bpp=0.3); torch.cuda.synchronize(); print("encode s (2nd)", time.perf_counter() - t)
for _ in range(2): codec.decode(thumb.jpeg)
torch.cuda.synchronize()
for _ in range(3):
    t0 = time.perf_counter(); p = read_thumbnail(read_thumbnail_bytes(thumb.jpeg)); t1 = time.perf_counter()
    img = codec.decode(thumb.jpeg); torch.cuda.synchronize(); t2 = time.perf_counter()
    print(f"parse {t1-t0:.3f} s, whole decode {t2-t1:.3f} s, tile {codec._tile_for(16384, 16384, codec.decode_tile)}")
from torch.profiler import ProfilerActivity, profile

with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    codec.decode(thumb.jpeg); torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=60))
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60))
