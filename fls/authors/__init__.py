"""The authors' released agents: safe reading of their pickles, TF->torch conversion, their own results."""
