#!/usr/bin/env python3
"""The C transforms against torchvision's own functions on float tensors.

For random images and parameters drawn by libsupcon (supcon_transform_sample), the output of
supcon_transform_apply_params must match torchvision's resized_crop (antialias on and off,
enlarging and shrinking), hflip, adjust_{brightness,contrast,saturation,hue} in the drawn
order, rgb_to_grayscale and normalize, all applied to ToTensor's float32 image.

torchvision's tensor path weighs red 0.2989 for grey levels; SPEC section 4 and PIL use
0.299, as libsupcon does, so the reference's rgb_to_grayscale is swapped for one with 0.299
(everything else is torchvision's code). Exit 77 (skipped) without torch/torchvision.

usage: test_data_torchvision.py path/to/libsupcon.so
"""
import ctypes as C
import sys

try:
    import numpy as np
    import torch
    import torchvision.transforms.functional as F
    import torchvision.transforms.functional_tensor as F_t
except Exception as e:  # pragma: no cover - depends on the machine
    print(f"skipped: torch/torchvision not importable ({e})")
    sys.exit(77)


class Config(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("size", C.c_int), ("views", C.c_int),
                ("crop", C.c_int), ("scale_min", C.c_float), ("scale_max", C.c_float),
                ("ratio_min", C.c_float), ("ratio_max", C.c_float), ("antialias", C.c_int),
                ("flip_p", C.c_float), ("jitter_p", C.c_float), ("brightness", C.c_float),
                ("contrast", C.c_float), ("saturation", C.c_float), ("hue", C.c_float),
                ("grey_p", C.c_float), ("mean", C.c_float * 3), ("std", C.c_float * 3)]


class Params(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("crop_top", C.c_int), ("crop_left", C.c_int),
                ("crop_height", C.c_int), ("crop_width", C.c_int), ("crop_tries", C.c_int),
                ("crop_scale", C.c_float), ("crop_ratio", C.c_float), ("flip", C.c_int),
                ("jitter", C.c_int), ("jitter_order", C.c_int * 4), ("brightness", C.c_float),
                ("contrast", C.c_float), ("saturation", C.c_float), ("hue", C.c_float),
                ("grey", C.c_int)]


def grey_0299(img, num_output_channels=1):
    if img.shape[-3] == 3:
        r, g, b = img.unbind(dim=-3)
        l_img = (0.299 * r + 0.587 * g + 0.114 * b).to(img.dtype).unsqueeze(dim=-3)
    else:
        l_img = img.clone()
    return l_img.expand(img.shape) if num_output_channels == 3 else l_img


F_t.rgb_to_grayscale = grey_0299


def reference(img_u8, p, size, antialias, mean, std):
    x = torch.from_numpy(img_u8).float().div(255)  # ToTensor
    x = F.resized_crop(x, p.crop_top, p.crop_left, p.crop_height, p.crop_width, [size, size],
                       antialias=bool(antialias))
    if p.flip:
        x = F.hflip(x)
    if p.jitter:
        for op in p.jitter_order:
            if op == 0:
                x = F.adjust_brightness(x, p.brightness)
            elif op == 1:
                x = F.adjust_contrast(x, p.contrast)
            elif op == 2:
                x = F.adjust_saturation(x, p.saturation)
            else:
                x = F.adjust_hue(x, p.hue)
    if p.grey:
        x = F.rgb_to_grayscale(x, num_output_channels=x.shape[0])
    return F.normalize(x, mean, std).numpy()


def main():
    lib = C.CDLL(sys.argv[1])
    lib.supcon_context_create.argtypes = [C.c_void_p, C.POINTER(C.c_void_p)]
    lib.supcon_transform_config_preset.restype = Config
    lib.supcon_transform_config_preset.argtypes = [C.c_int]
    lib.supcon_transform_create.argtypes = [C.c_void_p, C.POINTER(Config), C.POINTER(C.c_void_p)]
    lib.supcon_transform_sample.argtypes = [C.c_void_p, C.c_int, C.c_int, C.c_uint64,
                                            C.c_uint64, C.c_uint64, C.c_int, C.POINTER(Params)]
    lib.supcon_transform_apply_params.argtypes = [C.c_void_p, C.c_void_p, C.c_int, C.c_int,
                                                  C.c_int, C.POINTER(Params), C.c_void_p]
    lib.supcon_context_last_error.restype = C.c_char_p
    lib.supcon_context_last_error.argtypes = [C.c_void_p]
    ctx = C.c_void_p()
    assert lib.supcon_context_create(None, C.byref(ctx)) == 0

    rng = np.random.default_rng(1234)
    worst = 0.0
    cases = 0
    # (image height, width, output size): CIFAR-like enlarging, and shrinking crops
    for h, w, size, channels in [(32, 32, 32, 3), (45, 61, 24, 3), (28, 28, 32, 1),
                                 (70, 50, 16, 3)]:
        for antialias in (1, 0):
            cfg = lib.supcon_transform_config_preset(0)  # contrastive
            cfg.size = size
            cfg.antialias = antialias
            t = C.c_void_p()
            st = lib.supcon_transform_create(ctx, C.byref(cfg), C.byref(t))
            assert st == 0, lib.supcon_context_last_error(ctx)
            mean, std = list(cfg.mean)[:channels], list(cfg.std)[:channels]
            for i in range(12):
                # smooth structure plus noise, so every operation changes something
                yy, xx = np.mgrid[0:h, 0:w]
                base = np.stack([(xx * 5 + yy * 3 + 40 * c) % 256 for c in range(channels)])
                img = np.clip(base + rng.integers(-30, 31, base.shape), 0, 255).astype(np.uint8)
                img = np.ascontiguousarray(img)
                p = Params()
                p.struct_size = C.sizeof(Params)
                assert lib.supcon_transform_sample(t, h, w, 99, 0, i, i % 2, C.byref(p)) == 0
                if i % 3 == 0:  # exercise every operation often
                    p.jitter = 1
                if i % 7 == 0:
                    p.grey = 1
                out = np.empty((channels, size, size), np.float32)
                st = lib.supcon_transform_apply_params(t, img.ctypes.data, channels, h, w,
                                                       C.byref(p), out.ctypes.data)
                assert st == 0, lib.supcon_context_last_error(ctx)
                ref = reference(img, p, size, antialias, mean, std)
                err = float(np.abs(out - ref).max())
                worst = max(worst, err)
                cases += 1
                if err > 2e-5:
                    print(f"MISMATCH {h}x{w}->{size} aa={antialias} case {i}: max |diff| {err:g}"
                          f" params crop=({p.crop_top},{p.crop_left},{p.crop_height},"
                          f"{p.crop_width}) flip={p.flip} jitter={p.jitter} "
                          f"order={list(p.jitter_order)} b={p.brightness} c={p.contrast} "
                          f"s={p.saturation} h={p.hue} grey={p.grey}")
                    return 1
            lib.supcon_transform_free(t)
    lib.supcon_context_free(ctx)
    print(f"ok: {cases} cases match torchvision {F.__name__} (torch {torch.__version__}); "
          f"max |diff| after normalisation {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
