"""``dlora-sim cost``: price one DLoRA configuration against every strategy (issue 2)."""
