# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv on first
# use and installs the project from pyproject.toml (torch pinned to the 2.13.0 CPU build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/camel-bot demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# Two pytest workers (pytest-xdist): most tests wait on a child process, a server or a round, so
	# one process leaves a core idle; loadscope keeps a module's tests, and its module fixtures
	# (the demo's), in one worker.
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --durations=15

# Every benchmark whose figures the README quotes, with the command line its result file records;
# bench/README.md lists them, and the three left out (the SetFit peer, the recipe search, the retrain
# profile) with why.
bench: $(STAMP)
	$(BIN)/python -m bench.method.features
	$(BIN)/python -m bench.method.curve --datasets banking77 tweeteval_sentiment --threads 2
	$(BIN)/python -m bench.method.accuracy --datasets banking77 --methods camel_k0 camel_k1 camel_k2 camel logreg tfidf_svm
	$(BIN)/python -m bench.method.accuracy --datasets tweeteval_sentiment --methods tfidf_svm logreg camel_k0 camel_k1 camel_k2 camel full_ft
	$(BIN)/python -m bench.method.continuation --threads 2
	$(BIN)/python -m bench.method.active
	$(BIN)/python -m bench.method.engines --threads 1 --per-class 10 --repeats 2
	$(BIN)/python -m bench.method.speed --threads 2
	$(BIN)/python -m bench.system.day_one
	$(BIN)/python -m bench.system.learning_loop
	$(BIN)/python -m bench.system.memory
	$(BIN)/python -m bench.system.reload
	$(BIN)/python -m bench.system.reload --training-threads 2
	$(BIN)/python -m bench.system.round_start
	$(BIN)/python -m bench.system.load --rate 85 --seconds 300
	$(BIN)/python -m bench.system.review_command
	$(BIN)/python -m bench.system.second_base
	$(BIN)/python -m bench.system.store
	$(BIN)/python -m bench.system.taxonomy
	$(BIN)/python -m bench.system.erasure

clean:
	rm -rf $(VENV) camel-data demo-output
