"""A user's own backend with fixed_step's 20 ms steps whose prepared model, the first time its tags are read (right
after preparing, in no phase embench records), waits a known BOOKKEEPING_S: an independent truth for the time a
job spends outside its recorded phases (outside_phases_s)."""

from fixed_step_backend import FixedStep, hold

BOOKKEEPING_S = 0.5


class SlowToDescribe:
    """The prepared model, unchanged, except that the first read of its tags takes BOOKKEEPING_S."""

    def __init__(self, prepared):
        self._prepared, self._waited = prepared, False

    def __call__(self):
        return self._prepared()

    def __getattr__(self, name):
        return getattr(self._prepared, name)

    @property
    def tags(self) -> dict[str, str]:
        if not self._waited:
            self._waited = True
            hold(BOOKKEEPING_S)
        return self._prepared.tags


class SlowBookkeeping(FixedStep):
    def prepare(self, model, example, device, model_id):
        return SlowToDescribe(super().prepare(model, example, device, model_id))
