"""The HLO collective counter (``admmnn.experiments.hlo``) on a hand-written program."""
from admmnn.experiments import hlo


def test_collectives_are_read_from_hlo_text():
    text = """HloModule m

%add (x: f64[], y: f64[]) -> f64[] {
  ROOT %s = f64[] add(%x, %y)
}

%body (p: (s32[], f64[4,6])) -> (s32[], f64[4,6]) {
  %ar = f64[4,6]{1,0} all-reduce(%dot), channel_id=1, replica_groups={{0,1}}, to_apply=%add
  ROOT %t = (s32[], f64[4,6]) tuple(%i, %ar)
}

%cond (p: (s32[], f64[4,6])) -> pred[] {
  ROOT %lt = pred[] compare(%a, %b), direction=LT
}

ENTRY %main (x: f64[8,4]) -> f64[] {
  %w = (s32[], f64[4,6]) while(%init), condition=%cond, body=%body
  %ar2 = (f64[], f32[3]) all-reduce(%a, %b), channel_id=2, to_apply=%add
  %ag = f64[16]{0} all-gather(%c), dimensions={0}
  ROOT %r = f64[] add(%x, %y)
}
"""
    got = [(c["kind"], c["bytes"], c["shapes"], c["in_loop"]) for c in hlo.collectives(text)]
    assert got == [("all-reduce", 192, ["f64[4,6]"], True), ("all-reduce", 20, ["f64[]", "f32[3]"], False),
                   ("all-gather", 128, ["f64[16]"], False)]
