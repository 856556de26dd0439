"""How far from the limit: bytes per token from GGUF headers, the bandwidth probe's store, the share
arithmetic and where the tables show it (builder/models/traffic.py, host/bandwidth.py, host/peak.py,
results/share.py, results/tables.py). The probe's real figures are benchmarks/bandwidth.py's."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.bench.stats import Summary
from builder.errors import UserError
from builder.host import bandwidth, peak
from builder.models import traffic
from builder.results import share
from builder.results.hardware import hardware_lines

from .conftest import Catalogue, Outcome
from .test_own_models import write_gguf

EMBD, VOCAB, KV_OUT, FF = 256, 1000, 64, 512


def _model(path: Path, *, tied: bool = False, experts: bool = False) -> list[Path]:
    """A two-layer llama-shaped model in f16 (type 1), every size known: 2 bytes per element."""
    specs = [("token_embd.weight", EMBD * VOCAB, 1, 2 * EMBD * VOCAB)]
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (EMBD, VOCAB)}
    if not tied:
        specs.append(("output.weight", EMBD * VOCAB, 1, 2 * EMBD * VOCAB))
        shapes["output.weight"] = (EMBD, VOCAB)
    for i in range(2):
        for name, out in (("attn_q", EMBD), ("attn_k", KV_OUT), ("attn_v", KV_OUT), ("attn_output", EMBD)):
            specs.append((f"blk.{i}.{name}.weight", EMBD * out, 1, 2 * EMBD * out))
            shapes[f"blk.{i}.{name}.weight"] = (EMBD, out)
        ffn = "ffn_up_exps" if experts else "ffn_up"
        n = 8 if experts else 1
        specs.append((f"blk.{i}.{ffn}.weight", EMBD * FF * n, 1, 2 * EMBD * FF * n))
        shapes[f"blk.{i}.{ffn}.weight"] = (EMBD, FF, n) if experts else (EMBD, FF)
        specs.append((f"blk.{i}.attn_norm.weight", EMBD, 0, 4 * EMBD))
    kv = {"llama.expert_count": 8, "llama.expert_used_count": 2} if experts else {}
    return write_gguf(path, tuple(specs), kv=kv, shapes=shapes)


LAYER = 2 * (2 * EMBD * EMBD + 2 * EMBD * KV_OUT) + 4 * EMBD  # attention (f16) and the norm (f32)
FFN = 2 * EMBD * FF


def test_a_generated_token_reads_every_weight_once_one_embedding_row_and_the_kv_cells(tmp_path: Path) -> None:
    t = traffic.of(_model(tmp_path / "m.gguf"))
    row = 2 * EMBD
    assert t.weights == row + 2 * EMBD * VOCAB + 2 * (LAYER + FFN)
    assert t.kv_per_cell == 2 * (KV_OUT + KV_OUT) * 2  # two layers, K and V, f16
    assert t.matmul_elements == EMBD * VOCAB + 2 * (2 * EMBD * EMBD + 2 * EMBD * KV_OUT + EMBD * FF)
    # tg 32 from an empty context: llama.cpp reads 256 cells (its padding), an older tree 32
    assert t.per_token(0, 32) == t.weights + 256 * t.kv_per_cell
    assert t.per_token(0, 32, padding=32) == t.weights + 32 * t.kv_per_cell
    assert "embedding: one row" in t.how
    # a prompt token: the output matrix once per batch (llama-bench wants the last token's logits only)
    inner = 2 * (2 * EMBD * EMBD + 2 * EMBD * KV_OUT + EMBD * FF)
    assert t.prompt_flops(128) == 2.0 * (inner + EMBD * VOCAB / 128)


def test_a_tied_output_reads_the_whole_embedding_and_experts_count_only_the_used_ones(tmp_path: Path) -> None:
    tied = traffic.of(_model(tmp_path / "tied.gguf", tied=True))
    assert tied.weights == 2 * EMBD * VOCAB + 2 * (LAYER + FFN)
    assert "tied" in tied.how
    moe = traffic.of(_model(tmp_path / "moe.gguf", experts=True))
    assert moe.weights == 2 * EMBD + 2 * EMBD * VOCAB + 2 * (LAYER + FFN * 2)  # 2 of 8 experts
    assert "2 of 8 experts" in moe.how


def test_a_split_model_reads_what_the_one_file_reads(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "split").mkdir()
    one = traffic.of(_model(tmp_path / "one" / "m.gguf"))
    parts = _model_split(tmp_path / "split" / "m.gguf")
    assert len(parts) > 2
    split = traffic.of(parts)
    assert (split.weights, split.kv_per_cell, split.matmul_elements) == (one.weights, one.kv_per_cell,
                                                                         one.matmul_elements)  # fmt: skip


def _model_split(path: Path) -> list[Path]:
    """_model's tensors, a few per part (gguf-py's --split-max-tensors)."""
    specs = [("token_embd.weight", EMBD * VOCAB, 1, 2 * EMBD * VOCAB), ("output.weight", EMBD * VOCAB, 1,
             2 * EMBD * VOCAB)]  # fmt: skip
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (EMBD, VOCAB), "output.weight": (EMBD, VOCAB)}
    for i in range(2):
        for name, out in (("attn_q", EMBD), ("attn_k", KV_OUT), ("attn_v", KV_OUT), ("attn_output", EMBD)):
            specs.append((f"blk.{i}.{name}.weight", EMBD * out, 1, 2 * EMBD * out))
            shapes[f"blk.{i}.{name}.weight"] = (EMBD, out)
        specs.append((f"blk.{i}.ffn_up.weight", EMBD * FF, 1, 2 * EMBD * FF))
        shapes[f"blk.{i}.ffn_up.weight"] = (EMBD, FF)
        specs.append((f"blk.{i}.attn_norm.weight", EMBD, 0, 4 * EMBD))
    return write_gguf(path, tuple(specs), shapes=shapes, split_max_tensors=4)


@pytest.mark.parametrize(
    ("n_prompt", "n_gen", "padding", "cells"),
    [(0, 32, 256, 256.0), (0, 32, 32, 32.0), (300, 10, 256, 512.0), (0, 0, 256, 0.0),
     (0, 300, 256, (256 * 256 + 44 * 512) / 300), (40, 8, 32, 64.0)],
)  # fmt: skip
def test_kv_cells_follow_the_padding_and_the_context(
    n_prompt: int, n_gen: int, padding: int, cells: float
) -> None:
    assert traffic.kv_cells(n_prompt, n_gen, padding) == pytest.approx(cells)


def _hw(
    median: float = 12.0, low: float = 11.5, high: float = 12.5, llc: int = 32 << 20
) -> dict[str, object]:
    read = {"1": {"median": median, "min": low, "max": high, "n": 7}}
    est = {"ghz": 2.0, "cores": 2, "isa": "avx2", "f32_per_cycle": 32, "int8_per_cycle": 64}
    return {"bandwidth": {"read": read, "triad": read, "llc_bytes": llc}, "logical_cpus": 2, "peak": est}


def _key(metric: str, params: dict[str, object], suite: str = "e2e") -> share.Key:
    return (suite, metric, "tokens/s", json.dumps(params, sort_keys=True), "higher")


def test_the_share_is_achieved_bytes_per_second_over_the_probe() -> None:
    params = {"model": "f16", "threads": 1, "n_prompt": 0, "n_gen": 32}
    facts: share.Facts = {("e2e", _key("tg_tps", params)[3], "v"): {"bytes_per_token": 500e6}}
    b = share.bound(_key("tg_tps", params), "v", Summary(3, 20.0, 18.0, 22.0), facts, _hw())
    assert b is not None and b.kind == "memory"
    assert (b.achieved.median, b.achieved.min, b.achieved.max) == pytest.approx((10.0, 9.0, 11.0))
    assert b.share == pytest.approx(0.8) and not b.over and not b.in_cache
    assert b.cell() == "10 GB/s, 80% of 12.5"
    # past the probe's best repetition: flagged; within its spread: not
    over = share.bound(_key("tg_tps", params), "v", Summary(3, 20.0, 18, 22), facts, _hw(9.0, 8.0, 9.5))
    assert over is not None and over.over and over.cell().endswith(" !")
    within = share.bound(_key("tg_tps", params), "v", Summary(3, 20.0, 18, 22), facts, _hw(9.9, 9.0, 10.5))
    assert within is not None and not within.over
    # a token's bytes inside the last-level cache: said so, not "!"
    cached = share.bound(
        _key("tg_tps", params), "v", Summary(3, 20.0, 18, 22), facts, _hw(9.0, 8.0, 9.5, 1 << 30)
    )
    assert cached is not None and cached.in_cache and cached.cell().endswith("! (fits in cache)")
    # no fact for this variant, or a thread count the probe did not measure: no bound, or no share
    assert share.bound(_key("tg_tps", params), "w", Summary(3, 20.0, 18, 22), facts, _hw()) is None
    other = {**params, "threads": 4}
    facts4: share.Facts = {("e2e", _key("tg_tps", other)[3], "v"): {"bytes_per_token": 500e6}}
    b4 = share.bound(_key("tg_tps", other), "v", Summary(3, 20.0, 18, 22), facts4, _hw())
    assert b4 is not None and b4.share is None and b4.cell() == "10 GB/s"


def test_prompt_and_ops_rows_are_set_against_the_estimated_peak() -> None:
    params = {"model": "q8_0", "threads": 1, "n_prompt": 128, "n_gen": 0}
    facts: share.Facts = {("e2e", _key("pp_tps", params)[3], "v"): {"flops_per_token": 2e9}}
    b = share.bound(_key("pp_tps", params), "v", Summary(3, 32.0, 30, 33), facts, _hw())
    # 64 GFLOPS against 1 core x 2 GHz x 64 int8 ops = 128 (q8_0 multiplies in int8)
    assert b is not None and b.kind == "compute" and b.share == pytest.approx(0.5)
    assert b.cell() == "64 GFLOPS, 50% of est. 128"
    ops = ("ops", "gflops", "GFLOPS", json.dumps({"op": "MUL_MAT", "type": "f16"}), "higher")
    # test-backend-ops runs half the CPUs' threads: 1 core x 2 GHz x 32 f32 FLOPs
    o = share.bound(ops, "v", Summary(1, 16.0, 16, 16), {}, _hw())
    assert o is not None and o.limit is not None and o.limit.median == 64.0 and o.share == pytest.approx(0.25)
    assert peak.gflops({"cores": 2, "ghz": 2.0, "f32_per_cycle": 32, "int8_per_cycle": 64}, None, 1) is None


HUGE = 10**400  # an integer no float holds: an import's JSON may carry one


@pytest.mark.parametrize("hw", [None, {}, {"bandwidth": "x"}, {"bandwidth": {"read": {"1": {"median": "a"}}}},
                                {"bandwidth": {"read": [1, 2]}, "peak": {"cores": "two"}},
                                {"bandwidth": {"read": {"1": {"median": HUGE, "min": 1, "max": HUGE, "n": 3}},
                                               "llc_bytes": HUGE}, "peak": {"cores": 2, "ghz": HUGE,
                                 "f32_per_cycle": 32, "int8_per_cycle": 64}, "logical_cpus": HUGE},
                                {"bandwidth": {"read": {"1": {"median": 5, "min": 1, "max": 9, "n": True}}}},
                                {"bandwidth": {"read": {"1": {"median": -5, "min": -9, "max": -1, "n": 3}}},
                                 "peak": {"cores": 2, "ghz": float("inf"), "f32_per_cycle": 32,
                                          "int8_per_cycle": 64}}])  # fmt: skip
def test_a_record_of_any_other_shape_gives_no_share_and_no_error(hw: dict[str, object] | None) -> None:
    params = {"model": "f16", "threads": 1, "n_prompt": 0, "n_gen": 32}
    facts: share.Facts = {("e2e", _key("tg_tps", params)[3], "v"): {"bytes_per_token": 1e6}}
    b = share.bound(_key("tg_tps", params), "v", Summary(1, 1.0, 1.0, 1.0), facts, hw)
    assert b is not None and b.share is None
    pp = {**params, "n_prompt": 128, "n_gen": 0}
    facts[("e2e", _key("pp_tps", pp)[3], "v")] = {"flops_per_token": 1e6}
    c = share.bound(_key("pp_tps", pp), "v", Summary(1, 1.0, 1.0, 1.0), facts, hw)
    assert c is not None and c.share is None
    ops = ("ops", "gflops", "GFLOPS", json.dumps({"op": "MUL_MAT", "type": "f16"}), "higher")
    o = share.bound(ops, "v", Summary(1, 1.0, 1.0, 1.0), {}, hw)
    assert o is not None and o.share is None
    assert isinstance(hardware_lines(hw or {}), list)  # and no error: the report shows what it can


def test_the_record_shows_the_probe_and_the_estimate() -> None:
    lines = hardware_lines(_hw())
    assert any(ln.startswith("memory bandwidth") and "read t=1 12.0 GB/s [11.5, 12.5]" in ln for ln in lines)
    assert any("last-level cache 32 MiB" in ln for ln in lines)
    assert any(ln.startswith("arithmetic peak") and "2 cores x 2 GHz, avx2: 128 GFLOPS f32, 256 int8" in ln
               and "estimate" in ln for ln in lines)  # fmt: skip


def test_a_model_over_the_memory_limit_has_no_share_of_memory() -> None:
    params = {"model": "f16", "threads": 1, "n_prompt": 0, "n_gen": 32}
    facts: share.Facts = {("e2e", _key("tg_tps", params)[3], "v"): {"bytes_per_token": 500e6}}
    hw = {**_hw(), "memory_limit": {"bytes": 1 << 30, "model_to_limit": {"f16": 2.9}}}
    b = share.bound(_key("tg_tps", params), "v", Summary(3, 20.0, 18, 22), facts, hw)
    assert b is not None and b.share is None and b.streamed and "from disk" in b.cell()
    under = {**_hw(), "memory_limit": {"bytes": 1 << 30, "model_to_limit": {"f16": 0.4}}}
    b = share.bound(_key("tg_tps", params), "v", Summary(3, 20.0, 18, 22), facts, under)
    assert b is not None and b.share == pytest.approx(0.8) and not b.streamed


def test_the_peak_estimate_reads_the_isa_and_clock(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    flags = "fpu avx avx2 fma avx512f avx512_vnni"
    (tmp_path / "proc/cpuinfo").write_text(f"processor\t: 0\ncpu MHz\t\t: 2600.000\nflags\t\t: {flags}\n")
    est = peak.estimate(tmp_path)
    assert est is not None
    assert (est["isa"], est["f32_per_cycle"], est["int8_per_cycle"], est["ghz"]) == ("avx512f", 64, 256, 2.6)
    assert est["f16_per_cycle"] == 64  # no AVX512-FP16: f16 weights multiply at the f32 rate
    (tmp_path / "proc/cpuinfo").write_text(f"cpu MHz\t\t: 2000\nflags\t\t: {flags} avx512_fp16\n")
    est = peak.estimate(tmp_path)
    assert est is not None and est["f16_per_cycle"] == 128 and est["bf16_per_cycle"] == 64
    assert peak.gflops(est, "f16", 1) == 2.0 * 128 and peak.gflops(est, "q4_0", 1) == 2.0 * 256
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nflags\t\t: avx2 fma\n")
    assert peak.estimate(tmp_path) is None  # no clock, no estimate


def test_the_probe_store_is_hostile_input(tmp_path: Path) -> None:
    store = bandwidth.Store(tmp_path / "bandwidth.json")
    good = bandwidth.Probe(1, "", 64 << 20, (10.0, 11.0), (9.0, 9.5), "2026-12-04T00:00:00+0000")
    store.probes[store.key("", 1)] = good
    store.save()
    again = bandwidth.Store(tmp_path / "bandwidth.json")
    again.load()
    assert again.probes == {"all/1": good}
    data = json.loads((tmp_path / "bandwidth.json").read_text())
    for bad, said in (
        ("not json", "not JSON"),
        (json.dumps([]), '"version": 1'),
        (json.dumps({**data, "probes": {"all/1": {**data["probes"]["all/1"], "read": [1, "x"]}}}), '"read"'),
        (
            json.dumps({**data, "probes": {"all/1": {**data["probes"]["all/1"], "threads": 2}}}),
            "CPUS/THREADS",
        ),
        (
            json.dumps({**data, "probes": {"all/1": {**data["probes"]["all/1"], "read": [float("inf")]}}}),
            '"read"',
        ),
        (
            json.dumps({**data, "probes": {"all/1": {**data["probes"]["all/1"], "triad": [10**400]}}}),
            '"triad"',
        ),
        (
            json.dumps({**data, "probes": {"all/1": {**data["probes"]["all/1"], "buffer_bytes": True}}}),
            '"buffer_bytes"',
        ),
    ):
        (tmp_path / "bandwidth.json").write_text(bad)
        with pytest.raises(UserError, match=said) as err:
            bandwidth.Store(tmp_path / "bandwidth.json").load()
        assert "bandwidth.json" in str(err.value) and "--again" in str(err.value)
    # another machine's probes are not this one's: none loaded, measured anew
    (tmp_path / "bandwidth.json").write_text(json.dumps({**data, "machine": {"cpu_model": "elsewhere"}}))
    other = bandwidth.Store(tmp_path / "bandwidth.json")
    other.load()
    assert other.probes == {}


def test_variant_bandwidth_probes_once_and_stores_it(
    catalogue: Catalogue, run: Callable[..., Outcome], monkeypatch: pytest.MonkeyPatch
) -> None:
    res = run(catalogue.root, "bandwidth", "--threads", "1,2", "--json")
    assert res.code == 0, res.out + res.err
    record = json.loads(res.out)["bandwidth"]
    assert set(record["read"]) == {"1", "2"} and record["buffer_bytes"] == 64 << 20
    for t in ("1", "2"):
        r = record["read"][t]
        assert r["n"] == bandwidth.DEFAULT_REPS and 0 < r["min"] <= r["median"] <= r["max"]
    assert res.err.count("thread(s), 64 MiB") == 2
    if (llc := bandwidth.last_level_cache()) and 4 * llc > 64 << 20:  # said once, where it is so
        assert res.err.count("less than 4x the last-level cache") == 1
    res = run(catalogue.root, "bandwidth", "--threads", "1")
    assert res.code == 0 and "bandwidth probe:" not in res.err, res.err  # stored: not measured again
    assert "| 1 |" in res.out and "arithmetic peak (estimate)" in res.out
    (catalogue.home / "bandwidth.json").write_text("{")
    res = run(catalogue.root, "bandwidth", "--threads", "1")
    assert res.code == 2 and "bandwidth.json: not JSON" in res.err, res.err
    res = run(catalogue.root, "bandwidth", "--threads", "1", "--again")
    assert res.code == 0 and "measured anew" in res.err, res.err
    monkeypatch.setenv("VARIANT_BANDWIDTH_BYTES", "lots")
    res = run(catalogue.root, "bandwidth", "--threads", "1")
    assert res.code == 2 and "VARIANT_BANDWIDTH_BYTES" in res.err, res.err


def _expected_bytes(model: Path, cells: int) -> int:
    """A generated token's bytes by gguf-py's own reader (not models/traffic.py): every tensor once but
    the embedding, of which one row, plus K and V of every layer for the cells read, in f16."""
    import gguf

    tensors = {t.name: t for t in gguf.GGUFReader(model).tensors}
    total = sum(int(t.n_bytes) for t in tensors.values())
    embd = tensors["token_embd.weight"]
    assert "output.weight" in tensors  # the wide model has its own output matrix
    row = int(embd.n_bytes) // int(embd.shape[1])
    kv = sum(int(t.shape[1]) for n, t in tensors.items() if n.endswith(("attn_k.weight", "attn_v.weight")))
    return total - int(embd.n_bytes) + row + cells * kv * 2


def test_bench_stores_the_bytes_per_token_and_the_tables_show_the_share(
    catalogue: Catalogue, run: Callable[..., Outcome]
) -> None:
    catalogue.variant("a", 'targets = ["llama-bench"]\n')
    catalogue.variant("b", 'targets = ["llama-bench"]\n')
    assert run(catalogue.root, "build", "a", "b").code == 0
    # the source's padding reaches the KV bytes (not part of the build: nothing is rebuilt)
    sources = catalogue.root / "sources.toml"
    sources.write_text(sources.read_text() + "kv-padding = 32\n")
    res = run(catalogue.root, "bench", "b", "--vs", "a", "--reps", "2", "--suite", "e2e", "--threads", "1",
              "--type", "f16", "--layers", "1")  # fmt: skip
    assert res.code == 0, res.out + res.err
    assert "memory bandwidth: t=1" in res.err
    con = sqlite3.connect(catalogue.home / "results.sqlite")
    query = "SELECT variant, value, note FROM measurements WHERE metric = 'bytes_per_token' AND params LIKE ?"
    facts = con.execute(query, ('%"n_gen": 32%',)).fetchall()
    assert len(facts) == 4 and len({v for _, v, _ in facts}) == 1  # both variants, both repetitions
    nbytes = facts[0][1]
    model = next((catalogue.home / "models").glob("wide-f16-*.gguf"))
    assert nbytes == _expected_bytes(model, 32) and "padded to 32" in facts[0][2]
    hw = json.loads(con.execute("SELECT hardware FROM runs").fetchone()[0])
    probe = hw["bandwidth"]["read"]["1"]["max"]  # the share is of the probe's best repetition
    gbps = nbytes * 12.5 / 1e9  # the fake llama-bench says 12.5 tokens/s
    assert "| of the limit |" in res.out and f"{gbps:.3g} GB/s, {100 * gbps / probe:.0f}% of" in res.out
    assert "bytes_per_token" not in res.out and "flops_per_token" not in res.out  # facts are not rows
    res = run(catalogue.root, "compare", "a", "b", "--format", "json")
    rows = {r["metric"]: r for r in json.loads(res.out)}
    limit = rows["tg_tps"]["limit"]["candidate"]
    assert limit["achieved"] == pytest.approx(gbps) and limit["share"] == pytest.approx(gbps / probe)
    assert limit["bytes_per_token"] == nbytes and not limit["over_limit"]
    assert rows["pp_tps"]["limit"]["candidate"]["kind"] == "compute"
    assert rows["cpu_s_per_token"]["limit"] is None
    csv_lines = run(catalogue.root, "compare", "a", "b", "--format", "csv").out.splitlines()
    head = csv_lines[0].split(",")
    tg = next(line.split(",") for line in csv_lines if line.startswith("e2e,tg_tps"))
    assert float(tg[head.index("candidate_share")]) == pytest.approx(gbps / probe, rel=1e-3)
    res = run(catalogue.root, "report", "a", "b", "--out", str(catalogue.root / "rep"))
    text = (catalogue.root / "rep" / "report.md").read_text()
    assert "memory bandwidth" in text and f"{gbps:.3g} GB/s" in text
    assert "- a tg row's share is of the best memory read bandwidth" in text
    assert (
        "![e2e roofline](e2e-roofline.png)" in text
        and (catalogue.root / "rep" / "e2e-roofline.png").is_file()
    )
    # without the probe: GB/s, no share, nothing in the record
    res = run(catalogue.root, "bench", "a", "--reps", "1", "--suite", "e2e", "--threads", "1",
              "--type", "f16", "--layers", "1", "--no-bandwidth", "--format", "json")  # fmt: skip
    assert res.code == 0 and "bandwidth" not in res.err, res.err
    tg_row = next(r for r in json.loads(res.out) if r["metric"] == "tg_tps")
    assert tg_row["limit"]["candidate"]["share"] is None
    assert tg_row["limit"]["candidate"]["achieved"] == pytest.approx(gbps)
    # a bad padding is the spec's error, named
    sources.write_text(sources.read_text().replace("kv-padding = 32", 'kv-padding = "wide"'))
    res = run(catalogue.root, "bench", "a", "--reps", "1", "--suite", "e2e", "--threads", "1")
    assert res.code == 2 and "kv-padding" in res.err and "positive number of cells" in res.err, res.err


def test_the_roofline_places_tg_on_the_bandwidth_roof_and_pp_under_the_peak(tmp_path: Path) -> None:
    from builder.results import roofline

    tg = {"model": "f16", "threads": 1, "n_prompt": 0, "n_gen": 32}
    pp = {"model": "f16", "threads": 1, "n_prompt": 128, "n_gen": 0}
    groups: dict[share.Key, dict[str, dict[int, float | None]]] = {
        _key("tg_tps", tg): {"v": {0: 10.0, 1: 12.0, 2: None}},
        _key("pp_tps", pp): {"v": {0: 100.0}},
        _key("cpu_s_per_token", tg): {"v": {0: 0.1}},
    }
    facts: share.Facts = {
        ("e2e", _key("tg_tps", tg)[3], "v"): {"bytes_per_token": 1e9, "flops_per_token": 1e9},
        ("e2e", _key("pp_tps", pp)[3], "v"): {"bytes_per_token": 1e9 / 128, "flops_per_token": 1e9},
    }
    found = roofline.points(groups, facts, ["v", "w"])
    assert [(p.metric, p.intensity, p.gflops) for p in found] == [
        ("pp_tps", 128.0, 100.0),
        ("tg_tps", 1.0, 11.0),
    ]
    png = tmp_path / "roof.png"
    assert roofline.plot(png, "e2e", found, _hw(), ["v"]) and png.read_bytes()[:4] == b"\x89PNG"
    assert not roofline.plot(tmp_path / "none.png", "e2e", [], _hw(), ["v"])
    assert not (tmp_path / "none.png").exists()


def test_pr_tables_carry_the_limit_column_and_say_what_its_marks_mean() -> None:
    from builder.pr import prdoc
    from builder.results.compare import Row

    params = {"model": "f16", "threads": 1, "n_prompt": 0, "n_gen": 32}
    facts: share.Facts = {("e2e", _key("tg_tps", params)[3], x): {"bytes_per_token": 500e6} for x in "ab"}
    a = share.bound(_key("tg_tps", params), "a", Summary(3, 20.0, 18, 22), facts, _hw())
    b = share.bound(_key("tg_tps", params), "b", Summary(3, 30.0, 28, 32), facts, _hw())
    slow, fast = Summary(3, 20.0, 18, 22), Summary(3, 30.0, 28, 32)
    row = Row("e2e", "tg_tps", "tokens/s", params, "higher", slow, fast, None, "faster", (a, b))
    lines = prdoc.table([row], "a", "b").splitlines()
    assert lines[0].endswith("| Verdict | Of the limit |")
    assert lines[2].endswith("| 10 GB/s, 80% of 12.5 → 15 GB/s, 120% of 12.5 ! |")
    assert any(line.startswith("- !: above the limit") for line in lines)
    plain = dataclasses.replace(row, bounds=(None, None))
    assert "Of the limit" not in prdoc.table([plain], "a", "b")  # a run without facts: as before
