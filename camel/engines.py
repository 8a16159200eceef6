"""Engines that run the frozen bottom (embeddings and the lower blocks), and the choice among them.

The bottom's speed decides serving's latency and the cache fill's, and the fastest way to run it
depends on the CPU: bfloat16 matmuls pay only where the CPU has them natively (AVX512-BF16, AMX),
ONNX Runtime's fused float32 kernels beat torch's eager ones on most CPUs. An engine may serve
only if it keeps the answers: bench/method/engines.py measures, with one trained adapter and only
the engine swapped, how many answers change; at start a quick agreement check on fixed texts
guards against a broken install (a failing engine gives way to torch-fp32, and the log says why).
Every engine hands back float32 states; the cache keys them by engine so engines never mix.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from camel.errors import CamelError
from camel.hardware import native_bf16
from camel.private_files import FILE_MODE, fsync_path, make_private_dirs

if TYPE_CHECKING:
    from camel.base import BaseEncoder

log = logging.getLogger(__name__)

TORCH_FP32 = "torch-fp32"
TORCH_BF16 = "torch-bf16"
ORT_FP32 = "ort-fp32"
ENGINES = (TORCH_FP32, TORCH_BF16, ORT_FP32)
AUTO = "auto"
# Fastest first, among engines that kept the answers in bench/results/engines.json (paired on
# BANKING77 test: accuracy within 0.2 points, at most 0.5% of answers changed).
AUTO_ORDER_NATIVE_BF16 = (TORCH_BF16, ORT_FP32, TORCH_FP32)
AUTO_ORDER = (ORT_FP32, TORCH_FP32)
# Lowest cosine (to torch-fp32) of a check text's mean-pooled bottom states that an engine may
# show at start. bench/method/engines.py measures it on every BANKING77 test message (cosine_min):
# about 0.99999 for torch-bf16 and 1.0 for ort-fp32 on the 2-core AMD EPYC; a broken install
# (an export of other weights, a bad kernel) scores far lower (tests: -0.45 for the tiny BERT).
AGREEMENT_BOUND = 0.995
# Shipped with the code so the check reads no data: short messages of the kinds the bot answers,
# ASCII and not, short and near the token limit.
AGREEMENT_TEXTS = (
    "my card has not arrived yet",
    "where is my new card?",
    "I was charged twice for the same coffee",
    "how do I top up with a bank transfer",
    "the exchange rate on my last payment looks wrong",
    "can you help me change my PIN",
    "refund please",
    "why is my transfer still pending after three days?",
    "I lost my phone and my card, block everything now",
    "love the new app!",
    "terrible service, I want to close my account",
    "ok",
    "Ich habe meine Karte verloren",
    "carte bloquée au distributeur 🙁",
    "is there a fee for withdrawing cash abroad, and if so how much is it per withdrawal in euros?",
    "verify my identity",
)
ONNX_OPSET = 17
ENGINES_FOLDER = "engines"


class EngineError(CamelError):
    """An engine that cannot run here (missing package, failed export, broken file)."""


class BottomEngine:
    """Runs the frozen bottom of a base over tokenized texts; float32 states out."""

    name = TORCH_FP32
    # The top blocks run in bfloat16 too when the bottom does (same precision as the cache's states).
    bf16 = False

    def hidden(self, base: BaseEncoder, input_ids: torch.Tensor, mask: torch.Tensor, split_layer: int) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            hidden = base.model.embeddings(input_ids=input_ids)
            hidden = base.run_blocks(base.blocks[:split_layer], hidden, mask)
        return hidden.float()

    def __repr__(self) -> str:
        return f"<engine {self.name}>"


class TorchBF16Engine(BottomEngine):
    name = TORCH_BF16
    bf16 = True


class OrtEngine(BottomEngine):
    """ONNX Runtime float32 over an export of the bottom, made once per base and split layer and
    kept in `folder` (the data folder's engines/), so later starts and training rounds reuse it."""

    name = ORT_FP32

    def __init__(self, folder: str) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise EngineError(f"onnxruntime is not installed ({exc})") from exc
        self._ort = onnxruntime
        self.folder = os.path.abspath(folder)
        self._sessions: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def hidden(self, base: BaseEncoder, input_ids: torch.Tensor, mask: torch.Tensor, split_layer: int) -> torch.Tensor:
        session = self.session(base, split_layer)
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": mask.numpy()}
        return torch.from_numpy(session.run(None, feeds)[0])

    def session(self, base: BaseEncoder, split_layer: int) -> Any:
        key = (base.fingerprint, split_layer)
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = self._open(base, split_layer)
            return self._sessions[key]

    def export_path(self, base: BaseEncoder, split_layer: int) -> str:
        return os.path.join(self.folder, f"bottom-{base.fingerprint[:16]}-split{split_layer}.onnx")

    def _open(self, base: BaseEncoder, split_layer: int) -> Any:
        path = self.export_path(base, split_layer)
        if not os.path.isfile(path):
            export_bottom(base, split_layer, path)
        try:
            return self._new_session(path)
        except Exception as exc:  # onnxruntime raises its own classes for a damaged file
            log.warning("re-exporting %s: it did not load (%s)", path, " ".join(str(exc).split())[:200])
        export_bottom(base, split_layer, path)
        try:
            return self._new_session(path)
        except Exception as exc:
            raise EngineError(f"ONNX Runtime cannot load {path}: {' '.join(str(exc).split())[:200]}") from exc

    def _new_session(self, path: str) -> Any:
        options = self._ort.SessionOptions()
        # As many threads as torch uses here, so switching engines changes nothing else.
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle ONNX Runtime threads spin by default, taking the cores torch's top blocks and the
        # other threads of the bot need next (measured: cached predictions 3.5 ms -> 20 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return self._ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class _Bottom(nn.Module):
    """The graph that is exported: token ids and mask in, the split layer's states out."""

    def __init__(self, base: BaseEncoder, split_layer: int) -> None:
        super().__init__()
        self.embeddings = base.model.embeddings
        self.blocks = nn.ModuleList(base.blocks[:split_layer])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = self.embeddings(input_ids=input_ids)
        # The additive mask every attention implementation accepts: 0 on real tokens, -inf-ish on padding.
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for block in self.blocks:
            output = block(hidden, additive)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden


def export_bottom(base: BaseEncoder, split_layer: int, path: str) -> None:
    """Write the ONNX graph of the bottom to `path` atomically (owner-only), under a file lock so two
    processes (the bot and a training round) do not export at once."""
    folder = os.path.dirname(path)
    try:
        make_private_dirs(folder)
        lock_fd = os.open(os.path.join(folder, ".export.lock"), os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise EngineError(f"cannot use engine folder {folder}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if os.path.isfile(path) and _loads_as_onnx(path):
            return  # another process exported it while this one waited
        handle, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=folder)
        os.close(handle)
        try:
            _export(base, split_layer, temp)
            os.chmod(temp, FILE_MODE)
            fsync_path(temp)
            os.replace(temp, path)
            fsync_path(folder)
        except Exception as exc:  # the exporter raises many kinds; none may leave a partial file
            if os.path.exists(temp):
                os.remove(temp)
            why = " ".join(str(exc).split())[:200]
            raise EngineError(f"cannot export the bottom to ONNX in {folder}: {why}") from exc
        log.info("exported the bottom (%d blocks) of %s to %s", split_layer, base.path, path)
    finally:
        os.close(lock_fd)


def _export(base: BaseEncoder, split_layer: int, path: str) -> None:
    encoded = base.tokenize(["a short text", "a second, somewhat longer text"], 16)
    sample = (encoded["input_ids"], encoded["attention_mask"])
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes about Python control flow, not errors
        torch.onnx.export(
            _Bottom(base, split_layer).eval(),
            sample,
            path,
            input_names=["input_ids", "attention_mask"],
            output_names=["hidden"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles these blocks
        )


def _loads_as_onnx(path: str) -> bool:
    try:
        import onnx

        onnx.checker.check_model(path)
        return True
    except Exception:  # a partial or damaged file
        return False


def make_engine(name: str, folder: str | None) -> BottomEngine:
    """The engine called `name` (no agreement check); `folder` holds ONNX exports."""
    if name == TORCH_FP32:
        return BottomEngine()
    if name == TORCH_BF16:
        return TorchBF16Engine()
    if name == ORT_FP32:
        return OrtEngine(folder or tempfile.mkdtemp(prefix="camel-engines-"))
    raise EngineError(f"unknown engine {name!r}; expected auto or one of {', '.join(ENGINES)}")


@dataclass(frozen=True)
class EngineChoice:
    """The engine that runs the bottom and why (the start-up log and doctor print `reason`)."""

    engine: BottomEngine
    reason: str

    @property
    def name(self) -> str:
        return self.engine.name


def candidates(setting: str) -> tuple[str, ...]:
    """Engines to try for `setting`, in order; torch-fp32 is always last, as the fallback."""
    if setting == AUTO:
        return AUTO_ORDER_NATIVE_BF16 if native_bf16() else AUTO_ORDER
    if setting not in ENGINES:
        raise EngineError(f"unknown engine {setting!r}; expected auto or one of {', '.join(ENGINES)}")
    return (setting,) if setting == TORCH_FP32 else (setting, TORCH_FP32)


def unavailable_reason(name: str) -> str | None:
    """Why `name` cannot run on this machine at all (None: it can be tried)."""
    if name == TORCH_BF16 and not native_bf16():
        return "this CPU has no native bfloat16 (no AVX512-BF16 or AMX), so torch would emulate it slowly"
    return None


def agreement(
    base: BaseEncoder, engine: BottomEngine, split_layer: int, texts: tuple[str, ...] = AGREEMENT_TEXTS
) -> float:
    """Lowest cosine, over `texts`, between the mean-pooled bottom states of `engine` and torch-fp32."""
    from camel.base import mean_pool

    reference = base.bottom(list(texts), split_layer, engine=BottomEngine())
    candidate = base.bottom(list(texts), split_layer, engine=engine)
    if not torch.isfinite(candidate.hidden).all():
        return float("-inf")
    a, b = mean_pool(reference.hidden, reference.mask), mean_pool(candidate.hidden, candidate.mask)
    return float(nn.functional.cosine_similarity(a, b, dim=-1).min())


def choose_engine(
    base: BaseEncoder,
    setting: str = AUTO,
    folder: str | None = None,
    *,
    split_layer: int | None = None,
    check: bool = True,
    bound: float = AGREEMENT_BOUND,
) -> EngineChoice:
    """The first engine of `candidates(setting)` that runs here and agrees with torch-fp32 on the
    shipped texts (`check=False` skips the check: a training round runs the engine serving chose).
    `split_layer`: where the check compares states (default: below the default 2 trained blocks)."""
    split = base.num_layers - min(2, base.num_layers) if split_layer is None else split_layer
    skipped: list[str] = []
    for name in (n for n in candidates(setting) if n != TORCH_FP32):  # the reference is the fallback
        why = unavailable_reason(name)
        if why is None:
            try:
                engine = make_engine(name, folder)
                if not check:
                    return EngineChoice(engine, _reason(setting, name, skipped, "unchecked"))
                cosine = agreement(base, engine, split)
                if cosine > bound:
                    verdict = f"agrees with torch-fp32 (lowest cosine {cosine:.6f} > {bound})"
                    return EngineChoice(engine, _reason(setting, name, skipped, verdict))
                why = f"its states disagree with torch-fp32 (lowest cosine {cosine:.6f}, bound {bound})"
            except (EngineError, RuntimeError, OSError) as exc:
                why = " ".join(str(exc).split())[:300]
        skipped.append(f"{name}: {why}")
        log.warning("engine %s not used: %s", name, why)
    return EngineChoice(BottomEngine(), _reason(setting, TORCH_FP32, skipped, "the reference"))


def _reason(setting: str, name: str, skipped: list[str], verdict: str) -> str:
    asked = "[model] engine = auto" if setting == AUTO else f"[model] engine = {setting}"
    order = ", ".join(candidates(setting))
    text = f"{name}: {asked} (order on this CPU: {order}); {verdict}"
    return text + ("; skipped " + "; ".join(skipped) if skipped else "")


def engines_folder(data_dir: str) -> str:
    """Where ONNX exports live in a data folder."""
    return os.path.join(data_dir, ENGINES_FOLDER)


def cpu_facts() -> dict[str, Any]:
    """CPU model, the vector-unit flags that decide engines, and torch's capability (for logs and benches)."""
    flags: set[str] = set()
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    named = {"AVX2": "avx2", "AVX512": "avx512f", "AVX512-BF16": "avx512_bf16", "AMX": "amx_bf16"}
    return {
        "cpu_model": model,
        "flags": [label for label, flag in named.items() if flag in flags],
        "torch_capability": str(torch.backends.cpu.get_cpu_capability()),
        "native_bf16": native_bf16(),
    }
