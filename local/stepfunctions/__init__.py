"""Step Functions: moto's interpreter runs the real definitions; ``adapter`` installs what AWS
does and moto lacks (its docstring lists each piece and where it lives); ``interpreter`` runs the
Lambda tasks' real handlers in-process."""
