import { DocumentIndexService } from '@barnraise/datasets'

/**
 * The process's one document-index worker: checks of fetched indexes and provenance lookups
 * share it (and its two parsed indexes), and wait for each other rather than each parse
 * hundreds of megabytes at once.
 */
export const documentIndexes = new DocumentIndexService()
