"""Bad input, fuzzed (issue 27): random sweep and study files, command-line values of
``train`` and ``sweep``, and cells for ``data lookup``. Every input is either accepted or
refused with a :class:`UserError` (one line, exit 2 on the command line): never another
exception, which the command line would print as a traceback. Each target runs at least
2,000 cases; ``-s`` prints the count and the number of distinct messages."""

from __future__ import annotations

import copy
import io
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import UserError

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
CASES = 2000
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

# values of every kind YAML and the command line can carry
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["cpu", "smoke", "paper", "gnn2gnn", "natsbench", "C", "R", "0.1", "-1", "[]"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


class Tally:
    """Cases tried and the distinct refusals of one target."""

    def __init__(self, name: str) -> None:
        self.name, self.cases, self.messages = name, 0, Counter()

    def run(self, fn) -> None:
        self.cases += 1
        try:
            fn()
        except UserError as exc:
            message = str(exc)
            assert message.strip() and "Traceback" not in message
            self.messages[message.splitlines()[0][:200]] += 1

    @property
    def accepted(self) -> int:
        return self.cases - sum(self.messages.values())

    def report(self) -> None:
        assert self.cases >= CASES, (self.name, self.cases)
        print(
            f"\nfuzz {self.name}: {self.cases} cases, {self.accepted} accepted, "
            f"{sum(self.messages.values())} refused with {len(self.messages)} distinct messages"
        )


def _mutations(base: dict):
    """``base`` with random keys set, replaced or removed, at any depth."""

    def paths(obj, prefix=()):
        yield prefix
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from paths(v, (*prefix, k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                yield from paths(v, (*prefix, i))

    every = list(paths(base))

    @st.composite
    def mutated(draw):
        doc = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(every))
            parent, key = doc, None
            try:
                for step in path[:-1]:
                    parent = parent[step]
                key = path[-1] if path else None
            except (KeyError, IndexError, TypeError):
                continue
            action = draw(st.sampled_from(["set", "drop", "add"]))
            if key is None:
                doc = draw(values) if action == "set" else doc
            elif action == "drop" and isinstance(parent, dict):
                parent.pop(key, None)
            elif action == "add" and isinstance(parent, dict):
                parent[draw(st.text(max_size=10))] = draw(values)
            else:
                try:
                    parent[key] = draw(values)
                except (IndexError, TypeError):
                    pass
        return doc

    return mutated()


def _yaml_texts(base: dict):
    return st.one_of(
        _mutations(base).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
        values.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
        st.text(max_size=80),  # not YAML at all, or YAML of another shape
    )


def test_fuzz_sweep_files(tmp_path):
    from pipeline.cli import build_parser
    from pipeline.cli.sweep import sweep_plan

    base = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    path = tmp_path / "fuzz.yaml"
    tally = Tally("sweep files")
    parser = build_parser()  # built once: it loads every experiment's options

    @FUZZ
    @given(text=_yaml_texts(base), profile=st.sampled_from(["smoke", "cpu", "paper"]))
    def case(text, profile):
        path.write_text(text)
        tally.run(lambda: sweep_plan(parser.parse_args(["sweep", str(path), "--profile", profile])))

    case()
    tally.report()


def test_fuzz_study_files(tmp_path):
    from pipeline.study import Study

    full = yaml.safe_load((ROOT / "sweeps" / "papers.yaml").read_text())
    keep = {"3", "pretrain", "infonas"}  # a sweep on two benchmarks, a task and its sweep
    base = {**full, "entries": [e for e in full["entries"] if str(e["id"]) in keep]}
    path = ROOT / "sweeps" / f".fuzz-study-{id(tmp_path)}.yaml"  # sweep files resolve beside it
    tally = Tally("study files")

    def load(profile: str) -> None:
        study = Study(path)
        study.jobs(study.select(None), str(tmp_path / "results"), profile)

    @FUZZ
    @given(text=_yaml_texts(base), profile=st.sampled_from(["smoke", "cpu", "paper"]))
    def case(text, profile):
        path.write_text(text)
        tally.run(lambda: load(profile))

    try:
        case()
    finally:
        path.unlink(missing_ok=True)
    tally.report()
    assert not (tmp_path / "results").exists()  # nothing written by a check


cli_values = st.one_of(scalars.map(str), st.text(max_size=16), st.just(""), st.just("-1"))


def test_fuzz_train_options():
    from pipeline.cli import build_parser, train
    from pipeline.experiment import experiments

    fields = sorted(
        {
            f"--{(info.alias or name).replace('_', '-')}"
            for exp in experiments().values()
            for name, info in exp.config.model_fields.items()
        }
        | {"--seeds", "--bogus", "--model"}
    )
    tally = Tally("train options")
    parser = build_parser()

    @FUZZ
    @given(
        experiment=st.sampled_from([*experiments(), "nope"]),
        options=st.lists(st.tuples(st.sampled_from(fields), cli_values), max_size=4),
    )
    def case(experiment, options):
        argv = ["train", experiment, *[x for pair in options for x in pair]]

        def check():
            args = parser.parse_args(train.old_form(argv))
            train.trial_config(args)
            if args.seeds is not None:
                train.parse_seeds(args.seeds)

        with redirect_stderr(io.StringIO()):
            tally.run(check)

    case()
    tally.report()


def test_fuzz_sweep_options():
    from pipeline.cli import build_parser
    from pipeline.cli.sweep import sweep_plan

    options = ["--seeds", "--set", "--pack", "--max-concurrent", "--profile", "--benchmark"]
    options += ["--dataset"]
    sets = st.tuples(
        st.sampled_from(["mu", "tau", "lambda", "seed", "num_generated", "model", "x", ""]),
        cli_values,
    ).map(lambda kv: f"{kv[0]}={kv[1]}")
    tally = Tally("sweep options")
    parser = build_parser()

    @FUZZ
    @given(
        sweep=st.sampled_from(["sweeps/smoke.yaml", "sweeps/io_embedding.yaml"]),
        picked=st.lists(
            st.tuples(st.sampled_from(options), st.one_of(cli_values, sets)), max_size=4
        ),
    )
    def case(sweep, picked):
        argv = ["sweep", str(ROOT / sweep), *[x for pair in picked for x in pair]]
        with redirect_stderr(io.StringIO()):
            tally.run(lambda: sweep_plan(parser.parse_args(argv)))

    case()
    tally.report()


def test_fuzz_data_lookup(data_dir):
    from pipeline.cli import build_parser, main
    from pipeline.nas.spaces import get_space

    tally = Tally("data lookup")
    parser = build_parser()

    @st.composite
    def cells(draw):  # mostly V ops (input first, output last) and a V x V 0/1 matrix
        benchmark = draw(st.sampled_from(["nasbench101", "natsbench"]))
        space = get_space(benchmark)
        junk = st.sampled_from([*space.ops, "conv5x5", "", " "])
        if draw(st.integers(0, 3)) == 0:  # anything at all
            ops = draw(st.one_of(st.lists(junk, max_size=10).map(",".join), st.text(max_size=20)))
            matrix = draw(
                st.one_of(
                    st.integers(0, 10).flatmap(
                        lambda n: st.text(alphabet="01", min_size=n * n, max_size=n * n)
                    ),
                    st.text(alphabet="012 ,x", max_size=60),
                )
            )
            return benchmark, ops, matrix
        n = draw(st.integers(1, 9))
        interior = st.sampled_from(space.interior_ops)
        inner = draw(st.lists(interior, min_size=max(n - 2, 0), max_size=max(n - 2, 0)))
        ops = ["input", *inner, "output"][-n:] if n > 1 else ["input"]
        bits = draw(st.lists(st.booleans(), min_size=n * n, max_size=n * n))
        upper = draw(st.booleans())
        matrix = "".join(
            "1" if b and (not upper or i % n > i // n) else "0" for i, b in enumerate(bits)
        )
        return benchmark, ",".join(ops), matrix

    @FUZZ
    @given(cell=cells())
    def case(cell):
        benchmark, ops, matrix = cell
        argv = ["data", "lookup", "--benchmark", benchmark, "--ops", ops, "--matrix", matrix]
        argv += ["--data-dir", str(data_dir), "--json"]
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(argv, parser)
        tally.cases += 1
        assert code in (0, 2), (argv, err.getvalue())
        if code == 2:
            line = err.getvalue().strip()
            assert len(line.splitlines()) == 1 and line.startswith("gnn2gnn: error: ")
            tally.messages[line[:200]] += 1

    case()
    tally.report()
    assert tally.accepted > CASES // 10  # valid cells looked up too, not only refusals
