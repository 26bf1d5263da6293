"""The local Argo engine: runs compiled Workflow and WorkflowTemplate objects as Argo would."""
