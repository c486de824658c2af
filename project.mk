# This project's settings: its name (the stack is <name>-<stage>, the local tables and
# queues are <name>-..., the tags and the local metrics namespace say it), the region
# it deploys to, and the statuses its worker acts on (the deploy's default for
# ActOnStatuses, and the local stack's). The Makefile includes this file; edit it freely.
# {% comment %}
# `cargo lambda new NAME --template <this repository>` writes the answers to its
# questions here (CargoLambda.toml): in the template, each `ifeq` below is false and the
# first block holds the template's own values; in a project made from it, the second
# block is all there is.
# {% endcomment %}
ifeq (x{{ "" }},x)
{% comment %}
endif
PROJECT := wriftai-hooks
REGION := us-east-1
ACT_ON_STATUSES := succeeded,failed,cancelled,abandoned
ifeq (x{{ "" }},x)
{% endcomment %}PROJECT := {{ project_name }}
REGION := {{ region }}
ACT_ON_STATUSES := {{ act_on_statuses }}
endif
