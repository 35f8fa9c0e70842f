"""One module per `pallet` subcommand, loaded only when that command runs (see pallet.cli)."""
