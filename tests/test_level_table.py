"""The level table (kernels/_isa.TABLE) is the one place a level is described: the C side
that setup.py writes and the Python side both derive from it (#29)."""
import re

from fastconv._kernels import _conv_plan, _isa


def test_python_tables_derive_from_the_level_records():
    assert _isa.LEVELS == tuple(lvl.name for lvl in _isa.TABLE)
    for lvl in _isa.TABLE:
        assert _conv_plan.BLOCKS[lvl.name] is lvl.blocks
        assert _conv_plan.ONE_BELOW[lvl.name] == lvl.one_below
        assert _conv_plan.DW_FILTERS_BELOW[lvl.name] == lvl.dw_filters_below


def test_c_units_and_run_time_check_follow_the_table(tmp_path, monkeypatch):
    """A record added to the table (AVX-512 on 256-bit vectors, say) gets its C unit, a
    place in the list conv.pyx looks levels up in and its CPU test, with nothing else
    edited."""
    extra = _isa.Level("avx512_256", "avx512f,avx512vl,avx2,fma",
                       ("avx512f", "avx512vl", "avx2", "fma"), ("evex512", ()), 32,
                       _isa.Blocks(32, 8, 3, 4, 4, 2, 2, 8, 8), 4, 0.9)
    table = (*_isa.TABLE[:2], extra, *_isa.TABLE[2:])
    monkeypatch.setattr(_isa, "TABLE", table)
    units = _isa.write_c_units(tmp_path)
    assert [p.rsplit("/", 1)[1] for p in units] == [f"conv_simd_{lvl.name}.c" for lvl in table]
    unit = (tmp_path / "conv_simd_avx512_256.c").read_text()
    assert "#define FC_LEVEL avx512_256" in unit and "#define FC_VBYTES 32" in unit
    assert '#define FC_TARGET "avx512f,avx512vl,avx2,fma"' in unit
    header = (tmp_path / "conv_simd_levels.h").read_text()
    listed = re.search(r"fc_simd_levels\[\] = \{(.*)\};", header).group(1)
    assert listed == ", ".join(f"&fc_simd_{lvl.name}" for lvl in table)
    assert f"fc_simd_level_count = {len(table)}" in header
    assert ('if (level == &fc_simd_avx512_256)\n        return __builtin_cpu_supports('
            '"avx512f") && __builtin_cpu_supports("avx512vl")') in header
    # The baseline has no CPU test: it runs wherever the build does.
    assert "&fc_simd_sse)\n" not in header


def test_unchanged_units_are_not_rewritten(tmp_path):
    """A file whose text is unchanged keeps its time stamp, so a rebuild compiles nothing."""
    _isa.write_c_units(tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    _isa.write_c_units(tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps
