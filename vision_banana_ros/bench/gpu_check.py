"""GPU checks in one run (``scripts/gpu_check.sh``): figures to one JSON file.

On a CUDA machine: torch backend fp32 / fp16 / fp16 + CUDA graphs end to end on a 640x480
frame (network on GPU, depth and semantic decoded on the GPU, instances clustered on the CPU),
ONNX Runtime's CUDA provider when present, TensorRT fp16 and int8 when it imports; parity of
every path against CPU fp32 on paintings and on the evaluation metrics; an optional timed
training run on freshly rendered data. ``--cpu-dry-run`` runs the same code on the CPU (to
test the script where there is no GPU; its figures are not GPU figures).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _percentiles(times: list[float]) -> dict[str, float]:
    """Seconds -> the package's latency summary in milliseconds, named ``*_ms``."""
    from vision_banana_ros.stats import latency_summary

    summary = latency_summary(t * 1e3 for t in times)
    return {f"{k}_ms": v for k, v in summary.items() if k != "total_s"}


def _time(fn: Any, sync: Any, repeats: int) -> list[float]:
    for _ in range(5):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    return out


def gpu_pipeline(model: Any, frame: np.ndarray, k: np.ndarray, device: str, dtype: Any,
                 graphs: Any = None) -> dict[str, np.ndarray]:
    """depth + instances + semantic for one (H, W, 3) uint8 frame, decoding on the GPU."""
    import torch
    import torch.nn.functional as F

    from vision_banana_ros.codecs import decode_depth_torch, decode_instances
    from vision_banana_ros.codecs.semantic import decode_semantic_torch

    cfg = model.config
    h, w = frame.shape[:2]
    x = torch.from_numpy(frame).to(device, non_blocking=True).permute(2, 0, 1)[None]
    x = F.interpolate(x.to(dtype) / 255.0, size=(cfg.input_height, cfg.input_width),
                      mode="area")
    ids = torch.tensor([cfg.tasks.index(t) for t in ("depth", "instances", "semantic")],
                       device=device)
    with torch.inference_mode():
        paint = graphs(x, ids) if graphs is not None else model(x, ids)
        paint = paint.float()[0]
        fx = k[0, 0] * cfg.input_width / w
        depth = decode_depth_torch(paint[0]) * (fx / cfg.canonical_focal_px)
        depth = F.interpolate(depth[None, None], size=(h, w), mode="bilinear")[0, 0]
        sem = decode_semantic_torch(paint[2])
        sem = F.interpolate(sem[None, None].float(), size=(h, w), mode="nearest")[0, 0]
        inst_paint = paint[1].permute(1, 2, 0).contiguous()
    depth_np, sem_np = depth.cpu().numpy(), sem.to(torch.uint8).cpu().numpy()
    ids_small = decode_instances(inst_paint.cpu().numpy())
    import cv2

    inst = cv2.resize(ids_small, (w, h), interpolation=cv2.INTER_NEAREST)
    return {"depth": depth_np, "semantic": sem_np, "instances": inst}


def _parity(out: dict[str, Any], want: dict[str, Any], against: str) -> dict[str, float]:
    """Depth delta1, instance F and semantic agreement of one run's (H, W) ``depth``,
    ``instances`` and ``semantic`` against a reference run's (``against`` names it)."""
    from vision_banana_ros.evaluation.metrics import depth_metrics, instance_metrics

    return {f"depth_delta1_vs_{against}": depth_metrics(out["depth"], want["depth"]).delta1,
            f"instances_f_vs_{against}": instance_metrics(
                out["instances"].astype(np.int64), want["instances"].astype(np.int64)).f_measure,
            "semantic_agreement": float(np.mean(out["semantic"] == want["semantic"]))}


def _torch_variants(report: dict[str, Any], model_path: Path, frame: Any, ref: dict,
                    device: str, repeats: int, sync: Any) -> None:
    """torch fp32 (and fp16, fp16 + CUDA graphs on a GPU): end-to-end time and parity."""
    import torch

    from vision_banana_ros.model import load_model

    variants = [("torch fp32", torch.float32, False)]
    if device == "cuda":
        variants += [("torch fp16", torch.float16, False),
                     ("torch fp16 + CUDA graphs", torch.float16, True)]
    for name, dtype, graphs in variants:
        model, _ = load_model(model_path, device=device)
        model = model.to(dtype).eval()
        runner = None
        if graphs:
            from vision_banana_ros.runtime.torch_backend import TorchBackend

            backend = TorchBackend(model_path, device=device, precision="fp16",
                                   cuda_graphs=True, model=model)
            runner = backend.run_tensor
        out = gpu_pipeline(model, frame.rgb, frame.k, device, dtype, runner)
        times = _time(lambda m=model, r=runner, d=dtype: gpu_pipeline(
            m, frame.rgb, frame.k, device, d, r), sync, repeats)
        valid = np.isfinite(ref["depth"]) & np.isfinite(out["depth"])
        rel = np.abs(out["depth"][valid] - ref["depth"][valid]) / ref["depth"][valid]
        report["results"][name] = {"end_to_end_640x480": _percentiles(times)}
        report["parity"][name] = {"depth_max_rel_diff": float(rel.max()) if rel.size else None,
                                  **_parity(out, ref, "fp32_cpu")}


def _tensorrt(report: dict[str, Any], model_path: Path, cfg: Any, frame: Any, ref: dict,
              repeats: int, sync: Any) -> None:
    """TensorRT fp16 and int8 engines (where TensorRT imports): time and parity against ONNX
    Runtime fp32 on the CPU, with the camera's depth fed and without (int8 is calibrated on
    rendered frames with simulated sensor depth, a share without, as the node sees them)."""
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.runtime.calibration import calibration_set, shard_frames
    from vision_banana_ros.runtime.onnx_backend import OnnxRuntimeBackend
    from vision_banana_ros.runtime.select import onnx_for
    from vision_banana_ros.runtime.tensorrt_backend import TensorRTBackend
    from vision_banana_ros.synthetic.render import render_dataset

    calib_dir = Path(tempfile.mkdtemp(prefix="vb_calib_")) / "shards"
    render_dataset(calib_dir, scenes=32, views=4, seed=7, workers=8, progress=False,
                   config=_render_config())
    calib = calibration_set(shard_frames(calib_dir), cfg, 128)
    report["notes"].append(f"int8 calibration: {len(calib)} frames, {calib.with_depth} with "
                           "simulated sensor depth")
    tasks = "depth,instances,semantic"
    camera = np.where(np.isfinite(frame.depth), frame.depth, np.nan).astype(np.float32)
    inputs = {"rgb": None, "rgbd": camera if cfg.depth_input else None}
    cpu = OnnxRuntimeBackend(onnx_for(model_path))
    cpu_pipe = Pipeline(cpu, cpu.config, tasks)
    refs = {name: cpu_pipe(frame.rgb, frame.k, d) for name, d in inputs.items()
            if name == "rgb" or d is not None}
    cpu.close()
    for precision in ("fp16", "int8"):
        b = TensorRTBackend(onnx_for(model_path), precision=precision, max_tasks=4,
                            calibration=calib if precision == "int8" else None)
        pipe = Pipeline(b, b.config, tasks)
        times = _time(lambda p=pipe: p(frame.rgb, frame.k, inputs["rgbd"]), sync, repeats)
        report["results"][f"tensorrt {precision}"] = {
            "end_to_end_640x480_cpu_decode": _percentiles(times)}
        for name, want in refs.items():
            out = pipe(frame.rgb, frame.k, inputs[name])
            report["parity"][f"tensorrt {precision} {name}"] = _parity(
                vars(out), vars(want), "onnxruntime_cpu")
        b.close()


def main(argv: list[str] | None = None) -> int:
    import torch

    from vision_banana_ros.model import load_model
    from vision_banana_ros.runtime.select import resolve_model, tensorrt_available
    from vision_banana_ros.synthetic.analytic import render_spheres_on_plane

    ap = argparse.ArgumentParser(prog="gpu_check")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--cpu-dry-run", action="store_true")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available() and not args.cpu_dry_run:
        print("gpu_check: no CUDA device (use --cpu-dry-run to test the script)",
              file=sys.stderr)
        return 2
    device = "cpu" if args.cpu_dry_run else "cuda"
    repeats = 5 if args.cpu_dry_run else args.repeats
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "dry_run": args.cpu_dry_run,
        "host": platform.node(), "torch": str(torch.__version__),
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "results": {}, "parity": {}, "notes": []}
    model_path = resolve_model(args.model)
    ref_model, _ = load_model(model_path, device="cpu")
    frame = render_spheres_on_plane(640, 480, n_spheres=6, seed=3)
    ref = gpu_pipeline(ref_model, frame.rgb, frame.k, "cpu", torch.float32)
    report["errors"] = {}
    ok, why = tensorrt_available()
    report["tensorrt"] = why

    def section(name: str, run: Any) -> None:
        """One guarded section; the JSON is written after every one, so a timeout or an
        exception keeps the figures of the others."""
        try:
            run()
        except Exception as err:  # one section's failure must not lose the others' figures
            report["errors"][name] = f"{type(err).__name__}: {err}"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")

    section("torch", lambda: _torch_variants(report, model_path, frame, ref, device, repeats,
                                             sync))
    section("onnxruntime", lambda: _onnxruntime(report, model_path, frame, ref, device))
    if ok:
        section("tensorrt", lambda: _tensorrt(report, model_path, ref_model.config, frame,
                                               ref, repeats, sync))
    else:
        report["skipped"] = {"tensorrt": why}
        section("tensorrt", lambda: None)
    print(json.dumps(report["results"], indent=1))
    return 0


def _onnxruntime(report: dict[str, Any], model_path: Path, frame: Any, ref: dict,
                 device: str) -> None:
    """ONNX Runtime's providers, and its CUDA provider end to end where it loads."""
    import onnxruntime as ort

    from vision_banana_ros.evaluation.metrics import depth_metrics
    from vision_banana_ros.pipeline import Pipeline
    from vision_banana_ros.runtime.onnx_backend import OnnxRuntimeBackend
    from vision_banana_ros.runtime.select import onnx_for

    report["notes"].append(f"onnxruntime providers: {ort.get_available_providers()}")
    if device != "cuda" or "CUDAExecutionProvider" not in ort.get_available_providers():
        return
    b = OnnxRuntimeBackend(onnx_for(model_path), device="cuda")  # raises if it falls back
    pipe = Pipeline(b, b.config, "depth,instances,semantic")
    out = pipe(frame.rgb, frame.k)
    times = _time(lambda: pipe(frame.rgb, frame.k), lambda: None, 50)
    report["results"]["onnxruntime cuda"] = {"end_to_end_640x480_cpu_decode":
                                             _percentiles(times)}
    report["parity"]["onnxruntime cuda"] = {
        "depth_delta1_vs_fp32_cpu": depth_metrics(out.depth, ref["depth"]).delta1}
    b.close()


def _render_config() -> Any:
    from vision_banana_ros.synthetic.scene import SceneConfig

    return SceneConfig(resolutions=((256, 192),))


if __name__ == "__main__":
    sys.exit(main())
