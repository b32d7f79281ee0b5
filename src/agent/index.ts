/** The agent: the loop, and the tool execution that replay uses on its own. */
export { runAgent, type AgentOptions, type AgentResult, type ProgressCallback } from './loop.js'
export { executeTool, TOOL_DEFINITIONS, type ToolOptions, type ToolOutcome } from './tools.js'
