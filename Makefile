# admmnn: `make test` and `make tutorial` are all a newcomer needs.
#
# The research compendium:
#   make reproduce                  every notebook in notebooks/ at paper parameters -> outputs/reproduce/,
#                                   figures -> paper/figures/, tables and macros -> paper/tables/
#   make reproduce DATASET=fashion-mnist   the same, with `dataset` passed to every notebook
#   make quick   (= make reproduce paper QUICK=1)   the whole pipeline, small parameters, minutes
#   make paper                      paper/paper.pdf with latexmk (make paper-deps installs TeX)
#   make nbval                      the committed notebooks re-executed and compared (CI)
#   make benchmarks                 every script in benchmarks/ (hours): benchmarks/results/*.{txt,json},
#                                   then the paper's tables from them; QUICK=1: a smoke run of each (minutes)
#   make docs                       the API reference (Sphinx) -> docs/_build/html/index.html
# Only what changed reruns: an executed notebook depends on its source, on the library
# sources and on the parameters (QUICK, DATASET) it was run with.
SHELL  := bash
PYTHON ?= python3
VENV   := .venv
PY     ?= $(VENV)/bin/python
STAMP  ?= $(VENV)/.installed
OUT    := outputs
RUN    := $(OUT)/reproduce
PAPER  := paper

QUICK   ?= 0
DATASET ?=
quick_flag := $(if $(filter 1 true True yes,$(QUICK)),True,False)
run_id     := quick=$(quick_flag) dataset=$(DATASET)

NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
EXECUTED  := $(NOTEBOOKS:notebooks/%.ipynb=$(RUN)/%.ipynb)
LIBRARY   := pyproject.toml $(sort $(wildcard admmnn/*.py admmnn/*/*.py))

# Debian packages that build the paper (pdflatex, bibtex, latexmk, booktabs, natbib, hyperref)
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
LATEXMK := latexmk -pdf -interaction=nonstopmode -halt-on-error -file-line-error

.PHONY: install test tutorial benchmark benchmarks reproduce quick paper paper-deps nbval docs clean FORCE

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The main job: the tutorial notebook on its embedded default data (scikit-learn's digits).
tutorial: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m papermill notebooks/tutorial.ipynb $(OUT)/tutorial.ipynb -p output_dir $(OUT) --progress-bar

# The API reference from the numpydoc docstrings (autodoc + napoleon; offline: no intersphinx).
# -E rereads every page (autodoc does not track the Python sources), -W fails on any warning.
docs: $(STAMP)
	$(PY) -m sphinx -b html -E -W --keep-going -q docs docs/_build/html
	@echo "== docs/_build/html/index.html"

# Fashion-MNIST T-shirt vs shirt benchmark (needs `apt-get install dataset-fashion-mnist`).
benchmark: $(STAMP)
	$(PY) benchmarks/exact_fashion_mnist.py

# --- the benchmarks ------------------------------------------------------------------
# Every script in benchmarks/, in this order, each with the arguments of the results it
# writes (benchmarks/results/<name>.txt and .json, atomically: a failed script keeps its
# previous results and the others still run; make fails at the end), then the paper's
# tables and macros from the JSON results (paper/tables/bench_*.tex, benchmarks_macros.tex).
# Hours on 2 cores. QUICK=1: each script once with --quick (its smallest settings) into
# outputs/benchmarks_quick/ (tables in its tables/), minutes; the committed results stay.
# ENDGAME_OLD=<checkout of the previous default> adds endgame.py's "old default" rows.
ENDGAME_OLD  ?=
BENCH_OUT    := $(if $(filter True,$(quick_flag)),$(OUT)/benchmarks_quick,benchmarks/results)
BENCH_TABLES := $(if $(filter True,$(quick_flag)),$(BENCH_OUT)/tables,$(PAPER)/tables)
define BENCHMARK_RUNS
exact_fashion_mnist.py
backends.py
certify.py --problems fmnist --configs plain default --peers clarabel --max-time 300
certify.py --problems correlated --configs plain endgame default --peers clarabel
certify.py --problems scnn --configs default --peers scnn --max-iter 20000
endgame.py --problems tutorial correlated $(if $(ENDGAME_OLD),--old $(ENDGAME_OLD))
endgame.py --problems scnn fmnist fmnist-s1 fmnist-s2 $(if $(ENDGAME_OLD),--old $(ENDGAME_OLD))
endgame_grid.py
inner_tolerance.py
exact_precompute.py --sizes 2500 5000 10000
crossover.py --cap 20
solvers_fashion_mnist.py
fmnist_60k.py
compare_fashion_mnist.py
sharded.py
sharded_cost_model.py
distributed_localhost.py
endef
export BENCHMARK_RUNS

benchmarks: $(STAMP)
	@mkdir -p $(BENCH_OUT); failed=""; seen=" "; total=$$SECONDS; \
	while read -r script args; do \
		[ -n "$$script" ] || continue; \
		if [ "$(quick_flag)" = True ]; then \
			case "$$seen" in *" $$script "*) continue;; esac; seen="$$seen$$script "; args="--quick"; \
		fi; \
		echo "== [$$(date +%H:%M:%S)] benchmarks/$$script $$args --out $(BENCH_OUT)"; start=$$SECONDS; \
		if $(PY) benchmarks/$$script $$args --out $(BENCH_OUT) </dev/null; then \
			echo "== $$script done in $$((SECONDS - start)) s"; \
		else \
			echo "== $$script FAILED (exit $$?) after $$((SECONDS - start)) s; its previous results are kept"; \
			failed="$$failed $$script"; \
		fi; \
	done <<< "$$BENCHMARK_RUNS"; \
	$(PY) -m admmnn.experiments.bench tables --results $(BENCH_OUT) --tables $(BENCH_TABLES); \
	echo "== benchmarks ($(run_id)) in $$((SECONDS - total)) s: results in $(BENCH_OUT), tables in $(BENCH_TABLES)"; \
	if [ -n "$$failed" ]; then echo "== failed:$$failed"; exit 1; fi

# --- the compendium ------------------------------------------------------------------
# The parameters of the last run; rewritten only when they change, so that switching
# between QUICK=1 and paper parameters (or another DATASET) reruns every notebook.
$(RUN)/.params: FORCE
	@mkdir -p $(RUN)
	@echo '$(run_id)' | cmp -s - $@ || echo '$(run_id)' > $@

$(RUN)/%.ipynb: notebooks/%.ipynb $(LIBRARY) $(RUN)/.params | $(STAMP)
	@echo "== [$$(date +%H:%M:%S)] $< ($(run_id)) -> $@"
	@mkdir -p $(RUN)/$* $(PAPER)/figures $(PAPER)/tables
	@SECONDS=0; $(PY) -m papermill $< $(RUN)/$*.running.ipynb --progress-bar \
		-p output_dir $(RUN)/$* -p paper_dir $(PAPER) -p quick $(quick_flag) \
		$(if $(DATASET),-p dataset $(DATASET)) \
	&& mv $(RUN)/$*.running.ipynb $@ && echo "== $* done in $${SECONDS} s"

reproduce: $(EXECUTED)
	@echo "== reproduced $(words $(EXECUTED)) notebooks ($(run_id)): figures in $(PAPER)/figures, tables in $(PAPER)/tables"

quick:
	@$(MAKE) --no-print-directory reproduce paper QUICK=1

# latexmk reruns when a file the paper read changed; files that did not exist at the last
# build (\IfFileExists placeholders) are not tracked by it, so new ones force a rebuild (-g).
paper:
	@command -v latexmk >/dev/null || { echo "latexmk not found: run 'make paper-deps' as root, or apt-get install $(TEX_PACKAGES)"; exit 1; }
	cd $(PAPER) && $(LATEXMK) $$(test -f paper.pdf && test -z "$$(find figures tables -newer paper.pdf 2>/dev/null | head -1)" || echo -g) paper.tex
	@echo "== $(PAPER)/paper.pdf"

paper-deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(TEX_PACKAGES)

# The committed notebooks, executed again at their default parameters and compared with
# their stored outputs (cells marked NBVAL_CHECK_OUTPUT; times and addresses sanitised).
nbval: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider --nbval-lax --current-env \
		--sanitize-with notebooks/nbval_sanitize.cfg $(NOTEBOOKS)

clean:
	rm -rf $(OUT) .pytest_cache notebooks/outputs docs/_build
	cd $(PAPER) && rm -rf figures tables paper.pdf *.aux *.bbl *.blg *.fdb_latexmk *.fls *.log *.out
