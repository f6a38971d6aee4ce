"""A fifth adversarial review of the compiled tape's watch (tinygrad_rnn/tape_watch.py).

Each case: a cell, one compiled call, a change to something its step reads, then the compiled answer
must equal the composed unroll in float64 (and the change must move the composed answer, so the test can
fail). At 366b182 (main after watchfix4) each case was missed (the watch was complete and unchanged()
after the change, so no step was recorded and the stale tape was replayed); each is caught since. None of them is in
tests/test_tape_watch.py or tests/test_tape_watch_review{,2,3,4}.py. Four ways past it:

- code the engine calls by a name no code the watch read loads: a step-mask rule's `step` (a regulariser
  plugin's, as zoneout's), called by nn/step_masks.py's MaskedCell._step, is never read;
- a library class is never a holder (tape_watch.py `_follow`, `if not _library(...)`): a method a
  notebook adds to Tensor is not watched, nor is what it reads;
- `_library("__main__")` is True when a stdlib tool runs the script (`python -m cProfile script.py`,
  `python -m trace`): sys.modules["__main__"] is then the tool's module, so the script's cell is library
  code and nothing it reads is watched;
- a class used as a registry, `Acts["tanh"]`: neither a metaclass's `__getitem__` (only the class's own
  MRO gives implicit names, `_holder`) nor `__class_getitem__` (in `_NOT_RUN`) is read.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor
from tinygrad_rnn.nn import Recurrent

from watch_cells import Base, follows_the_change

pytestmark = pytest.mark.usefixtures("watch_on")  # (the watch is off by default)


class Plain(Base):
    def forward(self, x, state):
        h = self.pre(x, state).tanh()
        return h, (h,)


X = np.random.default_rng(1).standard_normal((3, 6, 2))


# ---- a step-mask rule (nn/step_masks.py), as a regulariser plugin writes one (plugins/regularisers/zoneout.py)
LEAK = 0.5


class LeakyRule:
    """Mixes the previous h back in, by a module-level rate."""

    def active(self, training):
        return True

    def draw(self, state, steps, dtype, training):
        return []

    def step(self, cell, x, state, masks, training):
        h, _ = cell(x, state)
        h = h * (1 - LEAK) + state[0] * LEAK
        return h, (h,)


class ClassRateRule(LeakyRule):
    rate = 0.5

    def step(self, cell, x, state, masks, training):
        h, _ = cell(x, state)
        h = h * (1 - self.rate) + state[0] * self.rate
        return h, (h,)


def check_rule(rule, change):
    """As follows_the_change(), through Recurrent (path 'compiled', the MaskedCell it builds), against path 'composed'."""
    tg.manual_seed(0)
    model = Recurrent(Plain, 2, 3, path="compiled").to(dtype=np.float64)
    model.step_masks.append(rule)
    x = Tensor(X)

    def run(path):
        model.path = path
        return model(x)[0].numpy()

    run("compiled")
    before = run("composed")
    change()
    after = run("composed")
    assert not np.allclose(before, after), "the change does not change the composed answer"
    np.testing.assert_allclose(run("compiled"), after, rtol=1e-12, atol=1e-12)


def test_a_step_mask_rule_reading_a_module_constant(monkeypatch):
    check_rule(LeakyRule(), lambda: monkeypatch.setitem(globals(), "LEAK", 0.1))


def test_a_step_mask_rule_reading_its_class_attribute(monkeypatch):
    check_rule(ClassRateRule(), lambda: monkeypatch.setattr(ClassRateRule, "rate", 0.1))


# ---- a method a notebook adds to Tensor -------------------------------------------------------------
GAIN = 1.0


class CallsAddedMethod(Base):
    def forward(self, x, state):
        h = self.pre(x, state).scaled_tanh()
        return h, (h,)


def fresh():
    tg.manual_seed(0)
    return CallsAddedMethod().to(dtype=np.float64)


def test_a_method_added_to_tensor_redefined(monkeypatch):
    monkeypatch.setattr(Tensor, "scaled_tanh", lambda self: self.tanh(), raising=False)
    follows_the_change(fresh(), lambda: monkeypatch.setattr(Tensor, "scaled_tanh", lambda self: self.sigmoid()))


def test_a_method_added_to_tensor_reading_a_global(monkeypatch):
    monkeypatch.setattr(Tensor, "scaled_tanh", lambda self: (self * GAIN).tanh(), raising=False)
    follows_the_change(fresh(), lambda: monkeypatch.setitem(globals(), "GAIN", 0.2))


# ---- a script run by a standard-library tool ------------------------------------------------------------
SCRIPT = textwrap.dedent("""
    import numpy as np
    import tinygrad_rnn as tg
    from tinygrad_rnn import Tensor
    from tinygrad_rnn.nn import Module, compile_cell, uniform_parameter, unroll

    GAIN = 1.0

    class Cell(Module):
        def __init__(self):
            self.weight_ih = uniform_parameter((3, 2), 0.5)
            self.weight_hh = uniform_parameter((3, 3), 0.5)

        def initial_state(self, n):
            return (Tensor.zeros(n, 3, dtype=self.weight_hh.dtype),)

        def forward(self, x, state):
            h = ((x @ self.weight_ih.T + state[0] @ self.weight_hh.T) * GAIN).tanh()
            return h, (h,)

    tg.manual_seed(0)
    cell = Cell().to(dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 6, 2)))
    compile_cell(cell).sequence(x, cell.initial_state(3))
    before = unroll(cell, x, cell.initial_state(3))[0].numpy()
    GAIN = 0.2
    after = unroll(cell, x, cell.initial_state(3))[0].numpy()
    assert not np.allclose(before, after), "the change does not change the composed answer"
    compiled = compile_cell(cell).sequence(x, cell.initial_state(3))[0].numpy()
    print("difference", float(np.abs(compiled - after).max()))
""")


def test_a_script_profiled_with_cprofile(tmp_path):
    """`python -m cProfile -o out script.py`, as one profiles a training script: the same script run
    plainly gives the composed answer (checked first), profiled it replayed the stale tape (0.72 apart)."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    for tool in ([], ["-m", "cProfile", "-o", str(tmp_path / "profile.out")]):
        result = subprocess.run([sys.executable, *tool, str(script)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        difference = float(result.stdout.split("difference")[-1])
        assert difference < 1e-12, f"{' '.join(tool) or 'plain run'}: compiled differs from composed by {difference}"


# ---- a class subscripted as a registry (less common Python) ------------------------------------------------
class Meta(type):
    def __getitem__(cls, name):  # Python calls it for Acts[...]: a metaclass's special method, never read
        return cls.table[name]


class MetaActs(metaclass=Meta):
    table = {"act": lambda a: a.tanh()}


class ClassGetitemActs:
    table = {"act": lambda a: a.tanh()}

    def __class_getitem__(cls, name):  # in tape_watch's _NOT_RUN, so never read
        return cls.table[name]


class CallsMetaActs(Base):
    def forward(self, x, state):
        h = MetaActs["act"](self.pre(x, state))
        return h, (h,)


class CallsClassGetitemActs(Base):
    def forward(self, x, state):
        h = ClassGetitemActs["act"](self.pre(x, state))
        return h, (h,)


def test_a_registry_served_by_a_metaclass_getitem(monkeypatch):
    tg.manual_seed(0)
    follows_the_change(CallsMetaActs().to(dtype=np.float64),
          lambda: monkeypatch.setitem(MetaActs.table, "act", lambda a: a.sigmoid()))


def test_a_registry_served_by_class_getitem(monkeypatch):
    tg.manual_seed(0)
    follows_the_change(CallsClassGetitemActs().to(dtype=np.float64),
          lambda: monkeypatch.setitem(ClassGetitemActs.table, "act", lambda a: a.sigmoid()))
