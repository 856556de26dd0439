"""Where the time went: named groups of functions, and the top functions by self and total time.

A sample belongs to the group of its innermost frame that matches one: a
sample in the kernel's futex_wait called from ggml_barrier is
synchronisation, a sample in ggml_vec_dot_q8_0_q8_0 called from the matmul is
a kernel, memcpy under the model loader is memory. So the groups partition
the profile and their shares add up to 100% with "other".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .stacks import Profile

# Checked in order on each frame, leaf first; the first group whose pattern matches wins.
GROUPS: tuple[tuple[str, str], ...] = (
    (
        "barrier and thread sync",
        # ggml_graph_compute_secondary_thread: a worker waiting for the next graph (the poll is inlined)
        r"^(ggml_barrier|ggml_graph_compute_thread_sync|ggml_graph_compute_check_for_work|"
        r"ggml_graph_compute_secondary_thread|"
        r"ggml_graph_compute_poll_for_work|.*futex.*|.*sched_yield.*|do_sched_yield|__x64_sys_sched_yield|"
        r"GOMP_.*|gomp_.*|__kmp.*|__kmpc_.*|omp_.*|\[libgomp[^]]*\]|\[libomp[^]]*\]|"
        # linux:schedule: uftrace's event for a thread off the CPU, which in ggml is a wait
        r"pthread_cond_.*|pthread_mutex_.*|.*spin_lock.*|linux:schedule)$",
    ),
    (
        "matmul / vec-dot kernels",
        r"^(ggml_vec_dot_.*|ggml_compute_forward_mul_mat.*|.*gemm.*|.*gemv.*|"
        r"ggml_compute_forward_mul_mat_id.*|qgemm_lut.*|.*tmac.*|.*lut_ctor.*|ggml_qgemm.*|iqk_.*|"
        r"ggml_vec_mad_.*|ggml_vec_dot.*)$",
    ),
    (
        "quantise activations",
        r"^(quantize_row_.*|ggml_quantize_.*|ggml_cpu_fp32_to_fp16|ggml_fp32_to_fp16_row|"
        r"ggml_cpu_fp32_to_bf16|.*from_float.*|ggml_vec_cvt_.*|ggml_compute_forward_dup.*|"
        r"preprocessor_k|partial_max_.*)$",
    ),
    (
        "memory and page faults",
        r"^(asm_exc_page_fault|exc_page_fault|.*handle_mm_fault|do_anonymous_page|"
        r"do_fault|do_wp_page|clear_page.*|memcpy.*|__memcpy.*|memset.*|__memset.*|__memmove.*|malloc|free|"
        r"calloc|realloc|_int_malloc|_int_free|posix_memalign|aligned_alloc|ggml_aligned_malloc|"
        r"alloc_pages.*|__alloc_pages.*|get_page_from_freelist|.*folio.*)$",
    ),
    (
        "model loading",
        r"^(llama_model_load.*|llama_model_loader.*|.*load_all_data.*|gguf_init.*|"
        r"llama_mmap.*|llama_file.*|.*read_raw.*|__x64_sys_read|ksys_read|vfs_read|filemap_.*|"
        r"__x64_sys_pread64|io_uring.*|__io_uring.*)$",
    ),
)
OTHER = "other"
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in GROUPS)
# Where a compute thread's work starts: a frame below it (an op no group names, e.g. flash attention)
# is "other", not the group of whatever called the graph. With OpenMP that caller is libgomp, whose
# frames are under every op: without this stop, each unnamed op would count as barrier time.
COMPUTE_ENTRY = re.compile(r"^ggml_graph_compute_thread(\..*)?$")


def group_of(stack: tuple[str, ...]) -> str:
    """The group of a stack (root first): its innermost frame that matches one, up to the compute entry."""
    for frame in reversed(stack):
        for name, pattern in _COMPILED:
            if pattern.match(frame):
                return name
        if COMPUTE_ENTRY.match(frame):
            return OTHER
    return OTHER


def shares(profile: Profile) -> dict[str, int]:
    """Weight per group, every group listed (in GROUPS order, then other), zeros included."""
    out: dict[str, int] = {name: 0 for name, _ in GROUPS}
    out[OTHER] = 0
    for stack, weight in profile.stacks.items():
        out[group_of(stack)] += weight
    return out


# Where a stack enters the kernel: a system call, an exception (page fault) or an interrupt.
KERNEL_ENTRY = re.compile(r"^(entry_SYSCALL.*|asm_exc_.*|asm_sysvec_.*|asm_common_interrupt)$")


def user_side(profile: Profile) -> Profile:
    """Each stack cut where it enters the kernel: a context switch's leaf is always `schedule`, but
    the frame that called into the kernel (`__sched_yield`, `syscall` for a futex wait, the spinning
    `ggml_barrier` a timer interrupt preempted) says where the thread was."""
    out: Counter[tuple[str, ...]] = Counter()
    for stack, weight in profile.stacks.items():
        cut = next((i for i, f in enumerate(stack) if KERNEL_ENTRY.match(f)), len(stack))
        out[stack[: max(cut, 1)]] += weight
    return Profile(dict(out), profile.unit)


@dataclass(frozen=True)
class Function:
    name: str
    self_weight: int  # as the leaf
    total_weight: int  # anywhere in the stack (once per stack)


def functions(profile: Profile, *, skip_root: bool = True) -> list[Function]:
    """Every function with its self and total weight, by total then self; the comm root left out."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for stack, weight in profile.stacks.items():
        frames = stack[1:] if skip_root and len(stack) > 1 else stack
        own[frames[-1]] += weight
        for name in set(frames):
            total[name] += weight
    rows = [Function(n, own[n], total[n]) for n in total]
    return sorted(rows, key=lambda f: (-f.total_weight, -f.self_weight, f.name))


def top(profile: Profile, n: int = 15, by: str = "self") -> list[Function]:
    rows = functions(profile)
    key = (lambda f: (-f.self_weight, f.name)) if by == "self" else (lambda f: (-f.total_weight, f.name))
    return sorted(rows, key=key)[:n]
