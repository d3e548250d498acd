"""Generated protocol code (make proto). Do not edit by hand."""
