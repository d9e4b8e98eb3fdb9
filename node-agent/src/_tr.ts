import { runTrainCommand } from './commands/train.ts'
console.log('exit', await runTrainCommand(process.argv.slice(2)))
