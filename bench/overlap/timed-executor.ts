// An executor that stands in for a GPU: it "trains" a unit by waiting the time the unit would
// take on the scenario's hardware, then returns weights a little away from the base, and
// records when it computed. Everything around it (fetching the base, encoding, signing and
// uploading the report, looking ahead) is the real agent's work loop.
import type { Executor, TrainRequest, TrainResult } from '../../node-agent/src/executors/executor.ts'

export interface ComputeSpan { assignmentId: string, round: number, start: number, end: number }

/** A simulated executor that computes for `computeMs` a unit and remembers each span. */
export function timedExecutor (computeMs: number): Executor & { spans: ComputeSpan[] } {
  const spans: ComputeSpan[] = []
  return {
    name: `simulated accelerator (${(computeMs / 1000).toFixed(2)} s a unit)`,
    kind: 'typescript',
    spans,
    train: async (request: TrainRequest): Promise<TrainResult> => {
      const start = performance.now()
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, computeMs)
        request.signal.addEventListener('abort', () => { clearTimeout(timer); reject(request.signal.reason) }, { once: true })
      })
      const params = new Float32Array(request.base.length)
      // A small step the int8 and topk codecs both carry: a sign pattern of its own for each unit
      // (identical reports would make a round's mean one of them, which real nodes never send).
      const salt = Number.parseInt(request.unit.assignmentId.slice(0, 8), 16)
      for (let i = 0; i < params.length; i++) params[i] = request.base[i]! - 1e-4 * ((((i ^ salt) * 2654435761) >>> 7) % 3 - 1)
      const end = performance.now()
      spans.push({ assignmentId: request.unit.assignmentId, round: request.unit.round, start, end })
      const r = request.unit.recipe
      return { params, lossCurve: [3, 2.9], tokens: r.innerSteps * r.batchSize * r.seqLen, computeSeconds: (end - start) / 1000, executor: 'typescript' }
    }
  }
}
