"""Amazon ECS, as far as ``ecs:runTask.sync`` needs it: ``tasks.LocalEcs`` runs a task's container
as a local process."""
