# The two commands of the README, and a few helpers. Everything runs on loopback.
.PHONY: up test down status crd bench clean

up:      ## build/install what is missing, start the local stack, apply examples/local.yaml
	bash stack/up.sh

test:    ## run the whole test suite against real servers
	bash stack/test.sh

down:    ## stop the local stack (data kept under .run/)
	bash stack/down.sh

status:
	@bash stack/controlplane.sh status; bash stack/node.sh status; bash stack/addons.sh status; bash stack/dataplane.sh status; bash stack/platform.sh status

crd:     ## regenerate the CRD from the model
	.venv/bin/ticketctl crd > crds/ticketplatform.yaml

bench:   ## operator benchmark (N TicketPlatforms)
	.venv/bin/python scripts/bench_operator.py

clean: down
	bash stack/hostnet.sh purge
	rm -rf .run
