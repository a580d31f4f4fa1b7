# SAM builds (BuildMethod: makefile). `sam build` calls build-<LogicalId> with ARTIFACTS_DIR.
# The layer holds the guildstack package plus the locked production dependencies, built
# for Lambda's Python 3.12 on the target architecture (GUILDSTACK_BUILD_ARCH, default arm64:
# make cannot see the template's Architecture parameter, so keep the two in step).

# Lambda's file system is read-only, so bytecode missing from the bundle is compiled again
# on every cold start. Both targets ship it, compiled by Python 3.12 with unchecked-hash
# invalidation: zip archives keep mtimes only to 2 s, which would make timestamp-checked
# .pyc files look stale.

UV ?= uv
PYTHON312 ?= python3.12
GUILDSTACK_BUILD_ARCH ?= arm64
COMPILE = $(PYTHON312) -m compileall -q -j 0 --invalidation-mode unchecked-hash
PLATFORM := $(if $(filter x86_64,$(GUILDSTACK_BUILD_ARCH)),x86_64,aarch64)-manylinux_2_28

build-SharedLayer:
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --quiet -o "$(ARTIFACTS_DIR)/requirements.txt"
	$(UV) pip install --quiet --no-config --target "$(ARTIFACTS_DIR)/python" \
		--python-version 3.12 --python-platform $(PLATFORM) --only-binary :all: \
		-r "$(ARTIFACTS_DIR)/requirements.txt"
	rm "$(ARTIFACTS_DIR)/requirements.txt"
	mkdir -p "$(ARTIFACTS_DIR)/python/guildstack"
	cp -R shared/guildstack/. "$(ARTIFACTS_DIR)/python/guildstack/"
	# Catalog data (agents, model prices): config.py finds it at /opt/infra/catalog.
	mkdir -p "$(ARTIFACTS_DIR)/infra"
	cp -R infra/catalog "$(ARTIFACTS_DIR)/infra/catalog"
	# The devstack is never shipped.
	rm -rf "$(ARTIFACTS_DIR)/python/guildstack/devstack"
	find "$(ARTIFACTS_DIR)/python" -name __pycache__ -type d -prune -exec rm -rf {} +
	$(COMPILE) "$(ARTIFACTS_DIR)/python"

define function_build
	mkdir -p "$(ARTIFACTS_DIR)/functions/$(1)"
	cp functions/__init__.py "$(ARTIFACTS_DIR)/functions/"
	cp functions/$(1)/*.py "$(ARTIFACTS_DIR)/functions/$(1)/"
	$(COMPILE) "$(ARTIFACTS_DIR)/functions"
endef

build-AuthFunction:
	$(call function_build,auth)

build-AgentsFunction:
	$(call function_build,agents)

build-RunsFunction:
	$(call function_build,runs)

build-ToolsFunction:
	$(call function_build,tools)

build-WorkerFunction:
	$(call function_build,worker)

build-DeadLetterFunction:
	$(call function_build,deadletter)

build-SweeperFunction:
	$(call function_build,sweeper)

build-StreamFunction:
	$(call function_build,stream)
	cp functions/stream/run.sh "$(ARTIFACTS_DIR)/functions/stream/run.sh"
	chmod +x "$(ARTIFACTS_DIR)/functions/stream/run.sh"

build-MemoryFunction:
	$(call function_build,memory)

build-ChatFunction:
	$(call function_build,chat)

build-CampaignsFunction:
	$(call function_build,campaigns)

build-RetentionFunction:
	$(call function_build,retention)

build-SelfAuditFunction:
	$(call function_build,selfaudit)

build-CacheWarmFunction:
	$(call function_build,cachewarm)
