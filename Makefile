# gluecell: `make demo` runs the main job, `make test` runs lint + the test suite.
# Both create .venv and install everything they need (pip and, as root, apt).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# System packages: libusb for open3d/pyrealsense2; chromium for the console's real-browser test (Playwright drives it).
APT_PACKAGES := libusb-1.0-0 chromium
# mosquitto: the MQTT broker of the factory protocol (its tests start one on 127.0.0.1)
APT_PACKAGES += mosquitto

.PHONY: all demo test lint venv sysdeps clean bench

all: test

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | sysdeps
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: takes the local CPU build; a bare 'torch' would pull GBs of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: sysdeps $(STAMP)

lint: venv
	$(BIN)/ruff check .

test: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -q

demo: venv
	$(BIN)/gluecell demo

bench: venv
	$(BIN)/gluecell bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# roslibjs (npm `roslib` 2.x) for the simulated cell's conformance test, into a git-ignored folder;
# Node < 22 has no global WebSocket, so `ws` comes too. `make test` installs it first.
APT_PACKAGES += nodejs
NODE_DIR := build/node
.PHONY: node-deps
node-deps: $(NODE_DIR)/.installed
$(NODE_DIR)/.installed: | sysdeps
	@command -v npm >/dev/null 2>&1 || { if [ "$$(id -u)" = "0" ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm; \
	  else echo "npm not found: run sudo apt-get install -y npm"; exit 1; fi; }
	mkdir -p $(NODE_DIR)
	@[ -f $(NODE_DIR)/package.json ] || echo '{"name": "gluecell-node-deps", "private": true}' > $(NODE_DIR)/package.json
	extra=""; [ "$$(node -p 'process.versions.node.split(".")[0]')" -lt 22 ] && extra="ws@8"; \
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error roslib@2 $$extra
	touch $@
test: node-deps
