/** What a run's data is tokenized with, and what its checkpoint folders carry for `AutoTokenizer`. */
export interface TextTokenizer {
  /** how runs and shards name it: `byte`, a catalogue name such as `gpt2`, or `sha256:<hex>` of an uploaded tokenizer.json */
  readonly name: string
  /** one more than the largest token id (the model's vocab_size must be at least this) */
  readonly vocabSize: number
  /** the id put between documents, or null when the tokenizer has none (byte level) */
  readonly eosId: number | null
  /** Text → ids, with no special tokens added. */
  encode: (text: string) => Int32Array
  /** Ids → text. */
  decode: (ids: ArrayLike<number>) => string
  /** tokenizer.json, tokenizer_config.json and special_tokens_map.json for a checkpoint folder. */
  huggingFaceFiles: (modelMaxLength: number) => Map<string, Record<string, unknown>>
}
