"""Graphs shipped with sfgraph; `sfgraph render NAME` finds them by name."""
