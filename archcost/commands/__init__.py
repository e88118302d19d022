"""One module per ``archcost`` sub-command; each defines ``add_parser(subparsers)``."""
