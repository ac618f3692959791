"""Fine-tuning a causal LM on the instruction data (TRL SFT, PEFT LoRA)."""
