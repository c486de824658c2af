# This project's settings: its name (the stack is <name>-<stage>, the local tables and
# queues are <name>-..., the tags and the local metrics namespace say it), the region
# it deploys to, and the statuses its worker acts on (the deploy's default for
# ActOnStatuses, and the local stack's). The Makefile includes this file; edit it freely.
PROJECT := {{ project_name }}
REGION := {{ region }}
ACT_ON_STATUSES := {{ act_on_statuses }}
# As `cargo lambda new` asked them. {% comment %}
# `cargo lambda new NAME --template <this repository>` writes the answers to its
# questions above (CargoLambda.toml) and leaves this block behind: this repository's own
# values, which override the placeholders (the last setting of a name wins, as in make,
# infra/up.sh and infra/stack.py).
PROJECT := wriftai-hooks
REGION := us-east-1
ACT_ON_STATUSES := succeeded,failed,cancelled,abandoned
# {% endcomment %}Change them freely; `make deploy` reads them.
