"""Integration kits for the clients of cognitia-pricing (copied into their code bases)."""
