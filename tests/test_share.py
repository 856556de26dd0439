"""How far from the limit: bytes per token from GGUF headers, the bandwidth probe's store, the share
arithmetic and where the tables show it (builder/models/traffic.py, host/bandwidth.py, host/peak.py,
results/share.py, results/tables.py). The probe's real figures are benchmarks/bandwidth.py's."""

from __future__ import annotations

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


def test_a_tied_output_reads_the_whole_embedding_and_experts_count_only_the_used_ones(tmp_path: Path) -> None:
    tied = traffic.of(_model(tmp_path / "tied.gguf", tied=True))
    assert tied.weights == 2 * EMBD * VOCAB + 2 * (LAYER + FFN)
    assert "tied" in tied.how
    moe = traffic.of(_model(tmp_path / "moe.gguf", experts=True))
    assert moe.weights == 2 * EMBD + 2 * EMBD * VOCAB + 2 * (LAYER + FFN * 2)  # 2 of 8 experts
    assert "2 of 8 experts" in moe.how


def test_split_model_parts_add_up_to_the_one_file(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "split").mkdir()
    one = traffic.of(_model(tmp_path / "one" / "m.gguf"))
    split = write_gguf(tmp_path / "split" / "m.gguf", (("blk.0.ffn_up.weight", 1024, 8, 1088),
                       ("blk.1.ffn_up.weight", 1024, 8, 1088)), split_max_tensors=1)  # fmt: skip
    assert len(split) == 2
    assert traffic.of(split).weights == 2 * 1088
    assert one.total >= one.weights


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
    median: float = 12.5, low: float = 12.0, high: float = 13.0, llc: int = 32 << 20
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


@pytest.mark.parametrize("hw", [None, {}, {"bandwidth": "x"}, {"bandwidth": {"read": {"1": {"median": "a"}}}},
                                {"bandwidth": {"read": [1, 2]}, "peak": {"cores": "two"}}])  # fmt: skip
def test_a_record_of_any_other_shape_gives_no_share_and_no_error(hw: dict[str, object] | None) -> None:
    params = {"model": "f16", "threads": 1, "n_prompt": 0, "n_gen": 32}
    facts: share.Facts = {("e2e", _key("tg_tps", params)[3], "v"): {"bytes_per_token": 1e6}}
    b = share.bound(_key("tg_tps", params), "v", Summary(1, 1.0, 1.0, 1.0), facts, hw)
    assert b is not None and b.share is None
    pp = {**params, "n_prompt": 128, "n_gen": 0}
    facts[("e2e", _key("pp_tps", pp)[3], "v")] = {"flops_per_token": 1e6}
    c = share.bound(_key("pp_tps", pp), "v", Summary(1, 1.0, 1.0, 1.0), facts, hw)
    assert c is not None and c.share is None


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
    assert res.err.count("bandwidth probe:") == 2
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


def test_bench_stores_the_bytes_per_token_and_the_tables_show_the_share(
    catalogue: Catalogue, run: Callable[..., Outcome]
) -> None:
    catalogue.variant("a", 'targets = ["llama-bench"]\n')
    catalogue.variant("b", 'targets = ["llama-bench"]\n')
    assert run(catalogue.root, "build", "a", "b").code == 0
    res = run(catalogue.root, "bench", "b", "--vs", "a", "--reps", "2", "--suite", "e2e", "--threads", "1",
              "--type", "f16", "--layers", "1")  # fmt: skip
    assert res.code == 0, res.out + res.err
    assert "memory bandwidth: t=1" in res.err
    con = sqlite3.connect(catalogue.home / "results.sqlite")
    facts = con.execute(
        "SELECT variant, value, note FROM measurements WHERE metric = 'bytes_per_token'"
    ).fetchall()
    assert len(facts) == 4 and len({v for _, v, _ in facts}) == 1  # both variants, both repetitions
    nbytes = facts[0][1]
    model = next((catalogue.home / "models").glob("wide-f16-*.gguf"))
    assert nbytes == traffic.of([model]).per_token(0, 32)
    assert "KV" in facts[0][2] and "padded to 256" in facts[0][2]
    hw = json.loads(con.execute("SELECT hardware FROM runs").fetchone()[0])
    probe = hw["bandwidth"]["read"]["1"]["median"]
    # the fake llama-bench says 12.5 tokens/s
    gbps = nbytes * 12.5 / 1e9
    assert "| of the limit |" in res.out
    assert "bytes_per_token" not in res.out and "flops_per_token" not in res.out  # facts are not rows
    res = run(catalogue.root, "compare", "a", "b", "--format", "json")
    rows = {r["metric"]: r for r in json.loads(res.out)}
    limit = rows["tg_tps"]["limit"]["candidate"]
    assert limit["achieved"] == pytest.approx(gbps) and limit["share"] == pytest.approx(gbps / probe)
    assert limit["bytes_per_token"] == nbytes
    assert rows["pp_tps"]["limit"]["candidate"]["kind"] == "compute"
    assert rows["cpu_s_per_token"]["limit"] is None
    res = run(catalogue.root, "report", "a", "b", "--out", str(catalogue.root / "rep"))
    text = (catalogue.root / "rep" / "report.md").read_text()
    assert "memory bandwidth" in text and f"{gbps:.3g} GB/s" in text
